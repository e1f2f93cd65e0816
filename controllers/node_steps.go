package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// The steps of a node's reconcile, in the order Reconcile takes them.

// checkStarting decides on a camera fliswarm started: it answers (done),
// it failed (stopped, or no answer within ready_timeout), or it is still
// starting (waiting, and how long until the next probe).
func (r *NodeReconciler) checkStarting(ctx context.Context, spec *v1.Swarm, rev, node string, mem *nodeMemory, have Observed, st *v1.NodeStatus) (time.Duration, bool) {
	s := mem.starting
	var c *engine.Container
	for i := range have.Containers {
		if have.Containers[i].ID == s.id {
			c = &have.Containers[i]
		}
	}
	now := r.clock.Now()
	switch {
	case c == nil:
		mem.starting = nil // removed meanwhile: the plan creates it again
		return 0, false
	case c.State == "running":
		err := r.cameraAnswers(ctx, spec, node)
		if err == nil {
			mem.starting, mem.answered, mem.lastGood = nil, c.ID, s.spec
			st.DeviceConnected = true
			r.log.Info("camera answers", "node", node, "container", c.ID[:min(12, len(c.ID))],
				"after", now.Sub(s.since).Round(time.Millisecond).String())
			if s.rollout {
				r.rollout.Release(node)
				r.store.SetRollout(node, nil)
			}
			if r.opts.OnCameraStarted != nil {
				r.opts.OnCameraStarted(node)
			}
			return 0, false
		}
		if now.Sub(s.since) < spec.ReadyTimeout.D() {
			return r.nextProbe(s), true
		}
		r.startFailed(node, rev, mem, fmt.Sprintf("camera did not answer within %s: %v", spec.ReadyTimeout.D(), err))
	case c.State == "created" || c.State == "restarting":
		if now.Sub(s.since) < spec.ReadyTimeout.D() {
			return r.nextProbe(s), true
		}
		r.startFailed(node, rev, mem, fmt.Sprintf("container still %s after %s", c.State, spec.ReadyTimeout.D()))
	default:
		r.startFailed(node, rev, mem, fmt.Sprintf("camera exited with code %d right after start", c.ExitCode))
	}
	return 0, false
}

func (r *NodeReconciler) nextProbe(s *startingCamera) time.Duration {
	d := s.delay
	s.delay = min(2*s.delay, maxProbeEvery)
	return d
}

// startFailed ends the wait for a camera that will not answer. Under a
// rollout, the rollout halts on this node, which keeps its slot and goes
// back to the spec it ran before.
func (r *NodeReconciler) startFailed(node, rev string, mem *nodeMemory, reason string) {
	s := mem.starting
	mem.starting = nil
	if !s.rollout {
		r.log.Info("camera failed to start", "node", node, "reason", reason)
		return
	}
	r.rollout.Halt(node, rev, reason)
	msg := "rollout of revision " + rev + " halted: " + reason
	if mem.lastGood == nil {
		msg += "; the spec this node ran before is not known, so it is left as it is"
	}
	r.log.Error(nil, "rollout halted", "node", node, "revision", rev, "reason", reason)
	r.store.SetRollout(node, &v1.RolloutStatus{Revision: rev, State: v1.RolloutHalted, Message: msg, HaltedNode: node})
}

// target is the spec node follows now, with the plan options that go with
// it. While the rollout of the spec is halted, a node that does not run
// the new spec yet stays on the spec it last ran (the node that failed
// goes back to it).
func (r *NodeReconciler) target(spec *v1.Swarm, rev, node string, mem *nodeMemory, want Desired, have Observed) (Desired, PlanOptions) {
	haltedNode, _, halted := r.rollout.Halted(rev)
	if !halted {
		return want, PlanOptions{}
	}
	if k := keeperOf(want, have); haltedNode != node && runsTarget(k, want, have.Image) {
		return want, PlanOptions{} // updated before the halt
	}
	if mem.lastGood != nil && mem.lastGood != spec {
		if old, err := desired(mem.lastGood, node); err == nil {
			return old, PlanOptions{}
		}
	}
	return want, PlanOptions{Keep: true}
}

// noteRunning records what a running camera tells: it ran long enough to
// forget its crashes; an adopted camera is probed once; the spec it runs
// is one to come back to.
func (r *NodeReconciler) noteRunning(ctx context.Context, spec *v1.Swarm, node string, mem *nodeMemory, want Desired, have Observed, k *engine.Container, st *v1.NodeStatus) {
	if k == nil || k.State != "running" {
		return
	}
	mem.ranOnce = true
	mem.crash.ranLongEnough(k.StartedAt, r.clock.Now())
	if mem.answered != k.ID && mem.starting == nil && r.cameraAnswers(ctx, spec, node) == nil {
		mem.answered = k.ID
	}
	st.DeviceConnected = mem.answered == k.ID
	if st.DeviceConnected && followsSpec(spec, node, want) && runsTarget(k, want, have.Image) {
		mem.lastGood = lastGoodSpec(spec, have.Image)
	}
}

// crashGate holds back the start of a camera that keeps stopping until
// its backoff has passed. An operator's request goes through once.
func (r *NodeReconciler) crashGate(ctx context.Context, eng Engine, node string, mem *nodeMemory, plan Plan, k *engine.Container, st *v1.NodeStatus, t ticket) (Result, Outcome, bool) {
	if k == nil || k.Running || k.State == "created" || k.State == "removing" {
		return Result{}, Outcome{}, false
	}
	now := r.clock.Now()
	// The camera's last words are read once it loops (its restart then
	// waits anyway): a first stop is restarted without that extra call.
	came := mem.answered == k.ID || r.store.CameraSeen(node)
	if mem.crash.observeStop(k.ID, k.StartedAt, k.FinishedAt, k.ExitCode, came, now) && mem.crash.looping() {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		mem.crash.logs, _ = eng.ContainerLogs(lctx, k.ID, crashLogLines)
		cancel()
	}
	starts := false
	for _, a := range plan.Actions {
		starts = starts || a.Type == ActionStartContainer
	}
	if !starts || t.bypass || !mem.crash.looping() || !now.Before(mem.crash.nextStart()) {
		return Result{}, Outcome{}, false
	}
	next := mem.crash.nextStart()
	if mem.crash.announced != mem.crash.lastStop {
		mem.crash.announced = mem.crash.lastStop
		r.log.Info("camera keeps stopping: backing off", "node", node, "stops", mem.crash.stops,
			"exitCode", mem.crash.exitCode, "nextStart", next.Format(time.RFC3339Nano), "lastLog", mem.crash.logs)
	}
	err := fmt.Errorf("%s: CrashLoopBackOff: the camera stopped %d times in a row (exit code %d); next start in %s",
		node, mem.crash.stops, mem.crash.exitCode, next.Sub(now).Round(time.Millisecond))
	return Result{RequeueAfter: next.Sub(now)}, Outcome{Err: err, Final: true}, true
}

// busyGate holds back a change that would take down a camera in the
// middle of an exposure, for at most update_wait. Operators' requests do
// not wait.
func (r *NodeReconciler) busyGate(spec *v1.Swarm, rev, node string, mem *nodeMemory, t ticket) (Result, bool) {
	if t.bypass || r.opts.Busy == nil {
		mem.busySince = time.Time{}
		return Result{}, false
	}
	busy, why := r.opts.Busy(node)
	now := r.clock.Now()
	if !busy {
		mem.busySince = time.Time{}
		return Result{}, false
	}
	if mem.busySince.IsZero() {
		mem.busySince = now
		r.log.Info("update pending: camera busy", "node", node, "why", why, "waitAtMost", spec.UpdateWait.D().String())
	}
	if now.Sub(mem.busySince) >= spec.UpdateWait.D() {
		r.log.Info("update_wait over: updating a busy camera", "node", node, "why", why)
		mem.busySince = time.Time{}
		return Result{}, false
	}
	r.store.SetRollout(node, &v1.RolloutStatus{Revision: rev, State: v1.RolloutPending, Message: "update pending: camera " + why})
	return Result{RequeueAfter: busyRetry}, true
}

// act runs one action, with its log line, and tells the requests the
// pass serves (t). It returns the id of a container it started.
func (r *NodeReconciler) act(ctx context.Context, eng Engine, node string, spec *v1.Swarm, want Desired, a Action, t ticket) (string, error) {
	r.log.Info("reconcile", "node", node, "action", string(a.Type), "target", a.Target, "reason", a.Reason)
	if s, ok := announce(want, a); ok {
		t.report(s)
	}
	id, err := r.execute(ctx, eng, node, spec, want, a, t)
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

// noteStarted remembers a camera fliswarm just started, so that later
// reconciles check that it answers. A camera that comes back is a restart,
// unless an operator's redeploy replaced it.
func (r *NodeReconciler) noteStarted(node string, mem *nodeMemory, spec *v1.Swarm, rev, id string, a Action, want Desired, redeploy bool) {
	if mem.ranOnce && !redeploy && (a.Type == ActionStartContainer || a.Type == ActionCreateContainer) {
		mem.restarts++
	}
	// A camera that exits at start is never seen running: its start
	// still makes the next one a restart.
	mem.ranOnce = true
	target := spec
	if !followsSpec(spec, node, want) {
		target = mem.lastGood
	}
	// A node that holds a rollout slot is rolling out, whatever the
	// action: after a failed recreate, the new camera comes from a plain
	// create, and it still releases the slot when it answers.
	mem.starting = &startingCamera{
		id: id, since: r.clock.Now(), delay: firstProbe, spec: target, revision: rev,
		rollout: r.rollout.Holds(node) && target == spec,
	}
	mem.answered = ""
	r.store.ContainerStarted(node)
	if r.opts.OnContainerStarted != nil {
		r.opts.OnContainerStarted(node)
	}
}

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

// rolloutStatus is node's part in the rollout of rev, nil when none.
func (r *NodeReconciler) rolloutStatus(rev, node string, _ *nodeMemory) *v1.RolloutStatus {
	halted, reason, ok := r.rollout.Halted(rev)
	if !ok {
		return nil
	}
	if halted == node {
		return &v1.RolloutStatus{Revision: rev, State: v1.RolloutHalted, HaltedNode: halted,
			Message: "rollout of revision " + rev + " halted: " + reason}
	}
	return &v1.RolloutStatus{Revision: rev, State: v1.RolloutHeld, HaltedNode: halted,
		Message: "rollout of revision " + rev + " halted on " + halted + ": " + reason}
}

func (r *NodeReconciler) haltError(rev string) error {
	node, reason, _ := r.rollout.Halted(rev)
	return fmt.Errorf("RolloutHalted: the rollout of revision %s halted on %s: %s", rev, node, reason)
}

// cameraAnswers probes the node's camera, when it listens on the node's
// own address (host networking).
func (r *NodeReconciler) cameraAnswers(ctx context.Context, spec *v1.Swarm, node string) error {
	if spec.NetworkMode != "host" {
		return nil
	}
	n := spec.Nodes[node]
	return r.opts.Probe(ctx, node, net.JoinHostPort(n.Host, strconv.Itoa(n.Port)))
}
