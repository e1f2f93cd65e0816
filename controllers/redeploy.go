package controllers

import (
	"context"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// A redeploy is an operator's request (the actor's `reconnect`) to pull
// the image and replace the container of a node even when it runs the
// current spec and image: operators deploy a new flicamera by pushing it
// to the registry under the same tag. It goes through the reconciler like
// any change (PlanOptions.Redeploy: the plan pulls, then recreates), so
// the new container is the reconciler's own: its events are expected, its
// readiness is probed, and it is neither started again nor counted as a
// crash. The request owes the redeploy to its waiters until a pass has
// pulled and replaced the container (a pass that waits for a rollout slot
// or fails keeps it owed; what a pass did is not done again: the pull, a
// forced recreation of the volumes), and it ends when the new camera
// answers.
//
// While a request waits, every step its passes take is reported to it as
// a v1.DeployStep (ConvergeOptions.Progress).

// pullReportEvery spaces the progress reports of a long pull.
const pullReportEvery = 2 * time.Second

func (w *waiter) wantsRedeploy() bool { return w.opts.Redeploy || w.opts.Force }

// close ends w's progress reports.
func (w *waiter) close() {
	w.progressMu.Lock()
	w.closed = true
	w.progressMu.Unlock()
}

func (w *waiter) report(s v1.DeployStep) {
	w.progressMu.Lock()
	defer w.progressMu.Unlock()
	if !w.closed && w.opts.Progress != nil {
		w.opts.Progress(s)
	}
}

// served is the waiters of node that a pass with ticket t serves; q.mu
// held.
func (q *Requests) served(t ticket) []*waiter {
	var out []*waiter
	for _, w := range q.waiters[t.node] {
		if w.gen <= t.gen && !w.finished {
			out = append(out, w)
		}
	}
	return out
}

// report tells the requests a pass serves of one of its steps.
func (t ticket) report(s v1.DeployStep) {
	if t.q == nil {
		return
	}
	t.q.mu.Lock()
	ws := t.q.served(t)
	t.q.mu.Unlock()
	s.Node = t.node
	for _, w := range ws {
		w.report(s)
	}
}

// done records that a pass took action a for the requests it serves: a
// pull, or the new container of a redeploy.
func (t ticket) done(a Action) {
	if t.q == nil || !t.redeploy {
		return
	}
	t.q.mu.Lock()
	defer t.q.mu.Unlock()
	for _, w := range t.q.served(t) {
		switch a.Type {
		case ActionPullImage:
			w.pulled = true
		case ActionRemoveVolume:
			w.volumes = true
		case ActionCreateContainer, ActionRecreateContainer:
			w.pulled, w.deployed = true, true
		}
	}
}

// announce is the DeployStep that announces action a (before it runs), false
// for an action that is not announced: the remove half of a recreate and
// its run are announced by execute.
func announce(want Desired, a Action) (v1.DeployStep, bool) {
	s := v1.DeployStep{Target: a.Target, Reason: a.Reason}
	switch a.Type {
	case ActionPullImage:
		s.Kind = v1.StepPull
	case ActionRemoveContainer, ActionRecreateContainer:
		s.Kind, s.Running = v1.StepRemoveContainer, a.Disruptive
	case ActionRemoveVolume:
		s.Kind = v1.StepRemoveVolume
	case ActionCreateVolume:
		s.Kind = v1.StepCreateVolume
	case ActionCreateContainer:
		s.Kind, s.Image = v1.StepRun, want.Container.Config.Image
	case ActionStartContainer:
		s.Kind = v1.StepStart
	case ActionUnpauseContainer:
		s.Kind = v1.StepUnpause
	default:
		return s, false
	}
	return s, true
}

// reportPulled tells the requests which image the node has after a pull
// of ref, and the engine's last word on it.
func (r *NodeReconciler) reportPulled(ctx context.Context, eng Engine, t ticket, ref, status string) {
	if t.q == nil {
		return
	}
	s := v1.DeployStep{Kind: v1.StepPulled, Target: ref, Status: status}
	if img, err := eng.InspectImage(ctx, ref); err == nil {
		s.ImageID = img.ID
	}
	t.report(s)
}

// pullReporter turns a pull's progress into at most one report every
// pullReportEvery, and keeps its last status line.
type pullReporter struct {
	r      *NodeReconciler
	t      ticket
	ref    string
	last   engine.PullProgress
	digest string // from the pull's "Digest: sha256:…" line
	sentAt int64  // unix nanoseconds of the last report, 0: none yet
}

func (p *pullReporter) progress(pp engine.PullProgress) {
	p.last = pp
	if d, ok := strings.CutPrefix(pp.Status, "Digest: "); ok {
		p.digest = d
	}
	now := p.r.clock.Now().UnixNano()
	if pp.Total == 0 || (p.sentAt != 0 && now-p.sentAt < int64(pullReportEvery)) {
		return
	}
	if p.sentAt == 0 {
		// The first bytes are not news: report once a pull has lasted.
		p.sentAt = now
		return
	}
	p.sentAt = now
	p.t.report(v1.DeployStep{Kind: v1.StepPullProgress, Target: p.ref, Current: pp.Current, Total: pp.Total, Status: pp.Status})
}

// pulledWhat says what a finished pull brought: the engine's last status
// line and the image's digest.
func pulledWhat(p *pullReporter) string {
	what := strings.TrimPrefix(p.last.Status, "Status: ")
	if what == "" {
		what = "done"
	}
	if p.digest != "" {
		what += "; digest " + p.digest
	}
	return what
}
