package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Intervals of the node reconciler.
const (
	// firstProbe is the wait before the first look at the readiness of a
	// camera just started (its camera client's state, see Store.SetCamera);
	// looks then double up to maxProbeEvery.
	firstProbe    = 50 * time.Millisecond
	maxProbeEvery = time.Second
	// slotRetry and busyRetry are how soon a node waiting for a rollout
	// slot or an idle camera looks again (a freed slot wakes it sooner).
	slotRetry = 5 * time.Second
	busyRetry = time.Second
	// pullLogEvery spaces the log lines of a long pull.
	pullLogEvery = 5 * time.Second
	// crashLogLines is how much of a stopped camera's log status keeps.
	crashLogLines = 5
)

// NodeReconciler converges one node: observe, decide, gates, act, record. It never
// loops or sleeps: it returns when it has acted, asking to come back when
// it waits for something (a camera to answer, a rollout slot, an idle
// camera, the end of a crash-loop backoff).
type NodeReconciler struct {
	store    *Store
	engines  *Engines
	rollout  *Rollout
	requests *Requests
	expect   *Expectations
	feeds    *Feeds // nil: no node's stream is known to be up
	opts     Options
	clock    Clock
	log      logr.Logger

	mu    sync.Mutex
	nodes map[string]*nodeMemory
	// gc is what image garbage collection remembers (imagegc.go).
	gc gcMemory
}

// nodeMemory is what the reconciler remembers of a node between
// reconciles: what it cannot observe again.
type nodeMemory struct {
	crash crashTracker
	// starting is a camera fliswarm started whose readiness is not yet
	// known. (What the node ran before a rollout is kept on the node, not
	// here: see history.go.)
	starting *startingCamera
	// busySince is when a pending update first found the camera busy.
	busySince time.Time
	// engineWasDown: the last observation found the engine (or the node)
	// down.
	engineWasDown bool
	// prepulled is the revision whose image this node pulled before
	// waiting for a rollout slot.
	prepulled string
	// restarts counts the starts of a camera that had stopped.
	restarts int
	// adopted is the last container adopted (see adopt), so that its
	// adoption is logged once.
	adopted string
	// ranOnce: a camera has run, or been started by fliswarm, on the node
	// since the daemon started.
	ranOnce bool
	// seen is what the last reads found (observecache.go).
	seen readCache
}

type startingCamera struct {
	id    string
	since time.Time
	delay time.Duration
	// rollout says that it replaced a running camera under a rollout
	// slot: if it fails, the rollout halts and the node goes back.
	rollout bool
}

func newNodeReconciler(store *Store, engines *Engines, rollout *Rollout, requests *Requests, expect *Expectations, opts Options) *NodeReconciler {
	return &NodeReconciler{
		store: store, engines: engines, rollout: rollout, requests: requests, expect: expect,
		opts: opts, clock: opts.Clock, log: opts.Logger, nodes: map[string]*nodeMemory{},
	}
}

func (r *NodeReconciler) memory(node string) *nodeMemory {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.nodes[node]
	if !ok {
		m = &nodeMemory{crash: crashTracker{policy: r.opts.CrashBackoff}}
		r.nodes[node] = m
	}
	return m
}

// Reconcile implements KeyReconciler. The queue never runs two reconciles
// of one node at once.
func (r *NodeReconciler) Reconcile(ctx context.Context, node string) (Result, error) {
	t := r.requests.begin(node)
	e := r.reconcile(ctx, node, t)
	if e.out.Err == nil && e.err != nil {
		e.out.Err = e.err
	}
	r.requests.finish(node, t, e.out, func() v1.NodeStatus { st, _ := r.store.NodeStatus(node); return st })
	return e.res, e.err
}

// pass is one reconcile of a node: what it read and what it decided.
type pass struct {
	node string
	t    ticket
	mem  *nodeMemory
	spec *v1.Swarm
	rev  string
	// want is what the spec renders for the node; have what the node has
	// (read once per pass); keeper the container named as want names it.
	want   Desired
	eng    Engine
	have   Observed
	keeper *engine.Container
	st     *v1.NodeStatus
	opts   PlanOptions
	plan   Plan
	taken  []Action
	// cleanup is history that is over (history.go), removed before the
	// plan runs: housekeeping, logged but not reported as the plan's.
	cleanup []Action
}

// passEnd is how a pass ends: when to come back, what the operators'
// requests hear, and an error that has the pass retried with backoff.
type passEnd struct {
	res Result
	out Outcome
	err error
}

// reconcile is one pass over node, in the order of a Kubernetes
// reconciler: observe the node once, decide (the camera just started,
// the rollout history, the plan), pass the gates (crash-loop backoff, a
// busy camera, a rollout slot), act, and record the status.
func (r *NodeReconciler) reconcile(ctx context.Context, node string, t ticket) passEnd {
	p, end := r.observe(ctx, node, t)
	if end != nil {
		return *end
	}
	defer r.afterPass(ctx, p) // image garbage collection, disk use: imagegc.go
	if end := r.decide(ctx, p); end != nil {
		return *end
	}
	if p.plan.Empty() {
		return r.converged(p)
	}
	if end := r.gates(ctx, p); end != nil {
		return *end
	}
	return r.actAll(ctx, p)
}

// observe reads the spec in force and the node (once), and records what
// it found.
func (r *NodeReconciler) observe(ctx context.Context, node string, t ticket) (*pass, *passEnd) {
	spec, rev := r.store.Spec()
	if _, ok := spec.Nodes[node]; !ok {
		return nil, &passEnd{out: Outcome{Err: fmt.Errorf("%s: node is not configured", node), Final: true}}
	}
	if !r.store.IsEnabled(node) {
		// A disabled node is left as it is.
		return nil, &passEnd{out: Outcome{Err: fmt.Errorf("%s: node is not enabled", node), Final: true}}
	}
	defer r.rollout.Known(node) // its history read, or not readable
	p := &pass{node: node, t: t, mem: r.memory(node), spec: spec, rev: rev}
	prev, seen := r.store.Observed(node)
	p.st = newStatus(prev, seen, spec, node, rev, r.clock.Now())
	var err error
	if p.want, err = desired(spec, node); err != nil {
		return nil, r.end(p, Result{}, Outcome{Err: err, Final: true}, err, false)
	}
	quick := false
	if !t.asked {
		p.eng, p.have, quick = r.quickLook(ctx, spec, node, p.want, p.st, p.mem)
	}
	if !quick {
		if end := r.fullLook(ctx, p); end != nil {
			return nil, end
		}
	}
	p.keeper = keeperOf(p.want, p.have)
	r.readHalt(p)
	return p, nil
}

// fullLook pings the node and its engine, then reads the node.
func (r *NodeReconciler) fullLook(ctx context.Context, p *pass) *passEnd {
	var err error
	p.mem.seen.ok = false
	if p.eng, err = r.probeNode(ctx, p.spec, p.node, p.st); err != nil {
		p.mem.engineWasDown = true
		return r.end(p, Result{}, Outcome{Err: err, Final: true}, err, true)
	}
	if p.mem.engineWasDown {
		// The engine came back and stopped the containers it found: not
		// the camera crashing, so it starts again at once.
		p.mem.engineWasDown = false
		p.mem.crash.forget()
	}
	if p.have, err = r.inspect(ctx, p.eng, p.node, p.want, p.st, &p.mem.seen); err != nil {
		return r.end(p, Result{}, Outcome{Err: err}, err, true)
	}
	p.mem.seen.ok = true
	return nil
}

// end records the pass's status and ends it; retry says that err has the
// pass retried with backoff.
func (r *NodeReconciler) end(p *pass, res Result, out Outcome, err error, retry bool) *passEnd {
	r.record(p.node, p.st, p.mem, p.taken, err)
	out.Actions = p.taken
	if !retry {
		err = nil
	}
	return &passEnd{res: res, out: out, err: err}
}

// decide makes the pass's plan: the history actions a camera just started
// calls for (going back after a failed rollout, or removing the camera
// it replaced), else PlanNode against the spec the node follows now.
func (r *NodeReconciler) decide(ctx context.Context, p *pass) *passEnd {
	back, wait := r.judgeStarting(p)
	if wait > 0 {
		return r.end(p, Result{RequeueAfter: wait}, Outcome{Err: fmt.Errorf("%s: waiting for the camera to answer", p.node)}, nil, false)
	}
	r.noteRunning(p)
	if len(back) > 0 {
		p.plan = Plan{Node: p.node, Actions: back}
		return nil
	}
	r.cleanHistory(ctx, p)
	p.opts = r.target(p)
	p.opts.Force, p.opts.Redeploy = p.t.force, p.t.redeploy
	// A node pulls a revision's image once, before it waits for a slot.
	p.opts.Pulled = p.t.pulled || p.mem.prepulled == p.rev && p.st.Image.Present && !p.t.redeploy
	p.plan = PlanNode(p.node, p.want, p.have, p.opts)
	return nil
}

// cleanHistory removes the history that is over; a failure is logged and
// the next pass tries again.
func (r *NodeReconciler) cleanHistory(ctx context.Context, p *pass) {
	for _, a := range p.cleanup {
		p.mem.seen.forgetFor(a.Type)
		r.log.Info("reconcile", "node", p.node, "action", string(a.Type), "target", a.Target, "reason", a.Reason)
		if err := p.eng.RemoveContainer(ctx, a.ID, true); err != nil {
			r.log.Error(err, "history not removed", "node", p.node, "target", a.Target)
		}
	}
}

// converged ends a pass with nothing to do.
func (r *NodeReconciler) converged(p *pass) passEnd {
	r.store.SetRollout(p.node, r.rolloutStatus(p.rev, p.node))
	k := p.keeper
	ok := k != nil && k.Running && k.State == "running" &&
		k.Labels[render.LabelSpecHash] == p.want.Container.Hash && r.store.CameraConnected(p.node)
	out := Outcome{Converged: ok}
	var res Result
	if k != nil && k.State == "running" && p.mem.crash.looping() && !k.StartedAt.IsZero() {
		// Look again when it has run long enough to forget its crashes
		// (the resync may be minutes away).
		res.RequeueAfter = max(firstProbe, k.StartedAt.Add(p.mem.crash.policy.ResetAfter).Sub(r.clock.Now()))
	}
	r.record(p.node, p.st, p.mem, nil, nil)
	if !ok {
		out.Err = fmt.Errorf("%s: %s", p.node, p.st.Condition(v1.ConditionContainerRunning).Message)
	}
	if _, _, halted := r.rollout.Halted(p.rev); halted {
		out.Final, out.Converged = true, false
		out.Err = r.haltError(p.rev)
	}
	return passEnd{res: res, out: out}
}

// actAll runs the plan's actions in order. Whether a camera it started
// answers is looked at by the next passes.
func (r *NodeReconciler) actAll(ctx context.Context, p *pass) passEnd {
	for _, a := range p.plan.Actions {
		id, err := r.act(ctx, p.eng, p.node, p.spec, p.want, a, p.t)
		if err != nil {
			if errors.Is(err, errNameInUse) {
				return *r.end(p, Result{RequeueAfter: firstProbe}, Outcome{Err: err}, err, false)
			}
			return *r.end(p, Result{}, Outcome{Err: err}, err, true)
		}
		p.taken = append(p.taken, a)
		if id != "" {
			r.noteStarted(p, id, a)
		}
	}
	if s := p.mem.starting; s != nil {
		return *r.end(p, Result{RequeueAfter: s.delay}, Outcome{Err: fmt.Errorf("%s: waiting for the camera to answer", p.node)}, nil, false)
	}
	return *r.end(p, Result{RequeueAfter: firstProbe}, Outcome{}, nil, false)
}
