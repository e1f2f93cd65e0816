package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// The gates of a node's reconcile, the act step's bookkeeping, and the
// record of what a pass found and did.

// gates holds back a plan until it may run: a crash loop waits out its
// backoff; a change that takes a running camera down waits for an idle
// camera, pulls its image first (every node pulls at once) and waits for
// a rollout slot.
func (r *NodeReconciler) gates(ctx context.Context, p *pass) *passEnd {
	if res, out, wait := r.crashGate(ctx, p); wait {
		return r.end(p, res, out, nil, false)
	}
	if !p.plan.Disruptive() {
		return nil
	}
	if !r.rollout.HistoryRead(p.node) {
		// A halt recorded on a node not read yet may hold this change.
		r.store.SetRollout(p.node, &v1.RolloutStatus{Revision: p.rev, State: v1.RolloutPending, Message: "update pending: reading every node's rollout history"})
		return r.end(p, Result{RequeueAfter: slotRetry}, Outcome{Err: fmt.Errorf("%s: waiting for every node's rollout history", p.node)}, nil, false)
	}
	if haltedNode, _, halted := r.rollout.Halted(p.rev); halted && haltedNode != p.node && !p.t.redeploy && !p.t.bypass {
		// The rollout was halted (its halt read back from another node)
		// after this pass decided: decide again, against the halt.
		return r.end(p, Result{RequeueAfter: firstProbe}, Outcome{Err: fmt.Errorf("%s: rollout halted meanwhile", p.node)}, nil, false)
	}
	if res, wait := r.busyGate(p); wait {
		return r.end(p, res, Outcome{Err: fmt.Errorf("%s: update pending: camera busy", p.node)}, nil, false)
	}
	if end := r.prepull(ctx, p); end != nil {
		return end
	}
	if !p.plan.Disruptive() {
		return nil // the image pulled is the one the camera runs after all
	}
	if !r.rollout.Acquire(p.node, p.rev) {
		r.store.SetRollout(p.node, &v1.RolloutStatus{Revision: p.rev, State: v1.RolloutPending, Message: "update pending: waiting for a rollout slot"})
		return r.end(p, Result{RequeueAfter: slotRetry}, Outcome{Err: fmt.Errorf("%s: waiting for a rollout slot", p.node)}, nil, false)
	}
	r.store.SetRollout(p.node, &v1.RolloutStatus{Revision: p.rev, State: v1.RolloutUpdating, Message: "replacing the camera"})
	return nil
}

// prepull runs the pulls that lead a disruptive plan before the slot is
// asked for, then reads the image pulled (what the pull changed) and
// plans again: a node that waits for a slot pulls once per revision, and
// a tag that still names the image the camera runs takes nothing down.
func (r *NodeReconciler) prepull(ctx context.Context, p *pass) *passEnd {
	pulled := false
	for len(p.plan.Actions) > 0 && p.plan.Actions[0].Type == ActionPullImage {
		a := p.plan.Actions[0]
		r.rollout.Pulling(p.node, p.rev)
		_, err := r.act(ctx, p.eng, p.node, p.spec, p.want, a, p.t)
		r.rollout.Pulled(p.node)
		if err != nil {
			return r.end(p, Result{}, Outcome{Err: err}, err, true)
		}
		p.taken = append(p.taken, a)
		p.plan.Actions = p.plan.Actions[1:]
		pulled = true
	}
	if !pulled {
		return nil
	}
	p.opts.Pulled, p.mem.prepulled = true, p.rev
	img, err := p.eng.InspectImage(ctx, p.want.Container.Config.Image)
	if err != nil {
		err = fmt.Errorf("%s: inspect image %s: %w", p.node, p.want.Container.Config.Image, err)
		return r.end(p, Result{}, Outcome{Err: err}, err, true)
	}
	p.have.Image = &img
	p.st.Image.Present, p.st.Image.ID = true, img.ID
	p.plan = PlanNode(p.node, p.want, p.have, p.opts)
	return nil
}

// crashGate holds back the start of a camera that keeps stopping until
// its backoff has passed. An operator's request goes through once.
func (r *NodeReconciler) crashGate(ctx context.Context, p *pass) (Result, Outcome, bool) {
	k, mem := p.keeper, p.mem
	if k == nil || k.Running || k.State == "created" || k.State == "removing" {
		return Result{}, Outcome{}, false
	}
	now := r.clock.Now()
	// The camera's last words are read once it loops (its restart then
	// waits anyway): a first stop is restarted without that extra call.
	came := r.store.CameraSeen(p.node)
	if mem.crash.observeStop(k.ID, k.StartedAt, k.FinishedAt, k.ExitCode, came, now) {
		r.event(p.node, v1.EventWarning, v1.ReasonCrashed, "container %s (%s) is %s, exit code %d%s",
			k.Name, short(k.ID), k.State, k.ExitCode, stopsInARow(mem.crash.stops))
		if mem.crash.looping() {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			mem.crash.logs, _ = p.eng.ContainerLogs(lctx, k.ID, crashLogLines)
			cancel()
		}
	}
	starts := false
	for _, a := range p.plan.Actions {
		starts = starts || a.Type == ActionStartContainer
	}
	if !starts || p.t.bypass || !mem.crash.looping() || !now.Before(mem.crash.nextStart()) {
		return Result{}, Outcome{}, false
	}
	next := mem.crash.nextStart()
	if mem.crash.announced != mem.crash.lastStop {
		mem.crash.announced = mem.crash.lastStop
		r.log.Info("camera keeps stopping: backing off", "node", p.node, "stops", mem.crash.stops,
			"exitCode", mem.crash.exitCode, "nextStart", next.Format(time.RFC3339Nano), "lastLog", mem.crash.logs)
		r.event(p.node, v1.EventWarning, v1.ReasonBackOff, "the camera stopped %d times in a row (exit code %d): next start in %s%s",
			mem.crash.stops, mem.crash.exitCode, next.Sub(now).Round(time.Millisecond), lastWords(mem.crash.logs))
	}
	err := fmt.Errorf("%s: CrashLoopBackOff: the camera stopped %d times in a row (exit code %d); next start in %s",
		p.node, mem.crash.stops, mem.crash.exitCode, next.Sub(now).Round(time.Millisecond))
	return Result{RequeueAfter: next.Sub(now)}, Outcome{Err: err, Final: true}, true
}

// busyGate holds back a change that would take down a camera in the
// middle of an exposure, for at most update_wait. Operators' requests do
// not wait.
func (r *NodeReconciler) busyGate(p *pass) (Result, bool) {
	mem := p.mem
	if p.t.bypass || r.opts.Busy == nil {
		mem.busySince = time.Time{}
		return Result{}, false
	}
	busy, why := r.opts.Busy(p.node)
	now := r.clock.Now()
	if !busy {
		mem.busySince = time.Time{}
		return Result{}, false
	}
	if mem.busySince.IsZero() {
		mem.busySince = now
		r.log.Info("update pending: camera busy", "node", p.node, "why", why, "waitAtMost", p.spec.UpdateWait.D().String())
		r.event(p.node, v1.EventNormal, v1.ReasonUpdatePending, "the change waits for the camera (%s), %s at most", why, p.spec.UpdateWait.D())
	}
	if now.Sub(mem.busySince) >= p.spec.UpdateWait.D() {
		r.log.Info("update_wait over: updating a busy camera", "node", p.node, "why", why)
		mem.busySince = time.Time{}
		return Result{}, false
	}
	r.store.SetRollout(p.node, &v1.RolloutStatus{Revision: p.rev, State: v1.RolloutPending, Message: "update pending: camera " + why})
	return Result{RequeueAfter: busyRetry}, true
}

// act runs one action, with its log line, and tells the requests the
// pass serves (t). It returns the id of a container it started.
func (r *NodeReconciler) act(ctx context.Context, eng Engine, node string, spec *v1.Swarm, want Desired, a Action, t ticket) (string, error) {
	r.log.Info("reconcile", "node", node, "action", string(a.Type), "target", a.Target, "reason", a.Reason)
	if s, ok := announce(want, a); ok {
		t.report(s)
	}
	r.memory(node).seen.forgetFor(a.Type) // what the action changes is read again
	id, err := r.execute(ctx, eng, node, spec, want, a, t)
	r.actionEvent(node, a, err)
	if m := r.opts.Metrics; m != nil {
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		m.CountAction(string(a.Type), outcome)
	}
	if err != nil {
		return "", &ActionError{Node: node, Action: a, Err: err}
	}
	t.done(a)
	return id, nil
}

// ActionError is an action that failed.
type ActionError struct {
	Node   string
	Action Action
	Err    error
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("%s: %s %s: %v", e.Node, e.Action.Type, e.Action.Target, e.Err)
}

func (e *ActionError) Unwrap() error { return e.Err }

// record stores what this reconcile observed and did.
func (r *NodeReconciler) record(node string, st *v1.NodeStatus, mem *nodeMemory, taken []Action, err error) {
	now := r.clock.Now()
	if err != nil {
		st.LastError = err.Error()
		st.SetCondition(v1.ConditionConverged, false, "ReconcileFailed", err.Error(), now)
		if isPullError(err) {
			st.SetCondition(v1.ConditionImageReady, false, v1.ReasonPullFailed, err.Error(), now)
		}
	} else {
		st.SetCondition(v1.ConditionConverged, true, "Converged", "nothing left to do", now)
	}
	for _, a := range taken {
		st.LastActions = append(st.LastActions, a.String())
	}
	if len(taken) == 0 {
		if prev, ok := r.store.Observed(node); ok {
			st.LastActions = prev.LastActions
		}
	}
	st.Restarts = mem.restarts
	st.CrashLoop = nil
	if mem.crash.looping() {
		st.CrashLoop = &v1.CrashLoopStatus{
			Restarts: mem.crash.stops, LastExitCode: mem.crash.exitCode, LastLog: mem.crash.logs,
			Backoff: v1.Duration(mem.crash.wait()), NextAttempt: mem.crash.nextStart(),
		}
	}
	r.store.SetObserved(*st)
}

// isPullError tells a failed pull.
func isPullError(err error) bool {
	ae, ok := errors.AsType[*ActionError](err)
	return ok && ae.Action.Type == ActionPullImage
}
