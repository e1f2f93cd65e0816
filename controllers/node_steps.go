package controllers

import (
	"fmt"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// The decide steps of a node's reconcile: what the node's history and a
// camera just started call for, and which spec the node follows now.

// readHalt reads a halt recorded on the node for the spec in force (after
// a restart, the rollout is halted there again, for the recorded reason)
// and resumes a rollout a restart interrupted: a node that kept the
// camera it replaced holds its slot, and its new camera is judged as one
// just started, since it started.
func (r *NodeReconciler) readHalt(p *pass) {
	if reason, ok := haltRecordOf(p.have.Halted, p.want); ok {
		if _, _, halted := r.rollout.Halted(p.rev); !halted {
			r.log.Info("rollout halt read from the node", "node", p.node, "revision", p.rev, "reason", reason)
			r.event(p.node, v1.EventWarning, v1.ReasonRolloutHalted, "rollout of revision %s halted (recorded on the node): %s", p.rev, reason)
			r.rollout.Halt(p.node, p.rev, reason)
		}
		return
	}
	if p.have.Previous == nil || p.mem.starting != nil {
		return
	}
	if haltedNode, _, halted := r.rollout.Halted(p.rev); halted && haltedNode == p.node {
		return
	}
	r.rollout.Resume(p.node, p.rev)
	if k := p.keeper; k != nil && runsTarget(k, p.want, p.have.Image) && k.State != "created" {
		since := k.StartedAt
		if since.IsZero() {
			since = r.clock.Now()
		}
		p.mem.starting = &startingCamera{id: k.ID, since: since, delay: firstProbe, rollout: true}
		r.log.Info("rollout resumed", "node", p.node, "container", short(k.ID))
		r.event(p.node, v1.EventNormal, v1.ReasonRolloutResumed, "rollout of revision %s resumed: container %s is judged as just started", p.rev, short(k.ID))
	}
}

// judgeStarting decides on a camera fliswarm started: it answers (its
// camera client is connected), it failed (stopped, or no answer within
// ready_timeout), or it is still starting (wait: when to look again).
// It returns the actions that put the node back when it failed under a
// rollout, and sets the pass's cleanup (history that is over).
func (r *NodeReconciler) judgeStarting(p *pass) (back []Action, wait time.Duration) {
	s := p.mem.starting
	p.cleanup = cleanupPlan(p.want, p.have, false)
	if s == nil {
		return nil, 0
	}
	c := p.keeper
	if c != nil && c.ID != s.id {
		c = nil
	}
	now := r.clock.Now()
	timeout := p.spec.ReadyTimeout.D()
	switch {
	case c == nil:
		p.mem.starting = nil // removed meanwhile: the plan creates it again
		return nil, 0
	case c.State == "running" && r.store.CameraConnected(p.node):
		p.mem.starting = nil
		r.log.Info("camera answers", "node", p.node, "container", short(c.ID),
			"after", now.Sub(s.since).Round(time.Millisecond).String())
		r.event(p.node, v1.EventNormal, v1.ReasonReady, "the camera of container %s answers, %s after its start",
			short(c.ID), now.Sub(s.since).Round(time.Millisecond))
		if s.rollout {
			r.rollout.Release(p.node)
			r.store.SetRollout(p.node, nil)
		}
		p.cleanup = cleanupPlan(p.want, p.have, true)
		return nil, 0
	case c.State == "running" || c.State == "created" || c.State == "restarting":
		if now.Sub(s.since) < timeout {
			return nil, r.nextProbe(s)
		}
		why := "camera did not answer within " + timeout.String()
		if c.State != "running" {
			why = fmt.Sprintf("container still %s after %s", c.State, timeout)
		} else if msg := r.store.CameraMessage(p.node); msg != "" {
			why += ": " + msg
		}
		return r.startFailed(p, c.ID, why), 0
	default:
		return r.startFailed(p, c.ID, fmt.Sprintf("camera exited with code %d right after start", c.ExitCode)), 0
	}
}

func (r *NodeReconciler) nextProbe(s *startingCamera) time.Duration {
	d := s.delay
	s.delay = min(2*s.delay, maxProbeEvery)
	return d
}

// startFailed ends the wait for a camera that will not answer. Under a
// rollout, the rollout halts on this node, which keeps its slot, records
// the halt and goes back to the camera it replaced.
func (r *NodeReconciler) startFailed(p *pass, id, reason string) []Action {
	s := p.mem.starting
	p.mem.starting = nil
	if !s.rollout {
		r.log.Info("camera failed to start", "node", p.node, "reason", reason)
		r.event(p.node, v1.EventWarning, v1.ReasonStartFailed, "%s", reason)
		return nil
	}
	r.rollout.Halt(p.node, p.rev, reason)
	msg := "rollout of revision " + p.rev + " halted: " + reason
	if p.have.Previous == nil {
		msg += "; the camera this node ran before is not known, so it is left as it is"
	}
	r.log.Error(nil, "rollout halted", "node", p.node, "revision", p.rev, "reason", reason)
	r.event(p.node, v1.EventWarning, v1.ReasonRolloutHalted, "%s", msg)
	r.store.SetRollout(p.node, &v1.RolloutStatus{Revision: p.rev, State: v1.RolloutHalted, Message: msg, HaltedNode: p.node})
	p.cleanup = nil
	return goBackPlan(p.want, p.have, id, reason)
}

// target is how the node follows the spec now: while the rollout of the
// spec is halted, a node that does not run it yet keeps the camera it
// runs (Keep).
func (r *NodeReconciler) target(p *pass) PlanOptions {
	haltedNode, _, halted := r.rollout.Halted(p.rev)
	if !halted {
		return PlanOptions{}
	}
	if haltedNode != p.node && runsTarget(p.keeper, p.want, p.have.Image) {
		return PlanOptions{} // updated before the halt
	}
	return PlanOptions{Keep: true}
}

// noteRunning records what a running camera tells: it ran long enough to
// forget its crashes.
func (r *NodeReconciler) noteRunning(p *pass) {
	if k := p.keeper; k != nil && k.State == "running" {
		p.mem.ranOnce = true
		p.mem.crash.ranLongEnough(k.StartedAt, r.clock.Now())
	}
}

// noteStarted remembers a camera fliswarm just started, so that later
// reconciles check that it answers. A camera that comes back is a restart,
// unless an operator's redeploy replaced it. A camera started while the
// node holds a rollout slot for the spec is the rollout's: after a failed
// recreate, the new camera comes from a plain create, and it still
// releases the slot when it answers; the camera put back is not.
func (r *NodeReconciler) noteStarted(p *pass, id string, a Action) {
	if p.mem.ranOnce && !p.t.redeploy && (a.Type == ActionStartContainer || a.Type == ActionCreateContainer) {
		p.mem.restarts++
	}
	// A camera that exits at start is never seen running: its start
	// still makes the next one a restart.
	p.mem.ranOnce = true
	p.mem.starting = &startingCamera{
		id: id, since: r.clock.Now(), delay: firstProbe,
		rollout: r.rollout.Holds(p.node) && !p.opts.Keep && a.Type != ActionRestorePrevious,
	}
	if r.opts.OnContainerStarted != nil {
		r.opts.OnContainerStarted(p.node)
	}
}

// rolloutStatus is node's part in the rollout of rev, nil when none.
func (r *NodeReconciler) rolloutStatus(rev, node string) *v1.RolloutStatus {
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
