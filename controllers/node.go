package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Intervals of the node reconciler.
const (
	// firstProbe is the wait before the first readiness probe of a camera
	// just started; probes then double up to maxProbeEvery.
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

// NodeReconciler converges one node: observe, plan, act, record. It never
// loops or sleeps: it returns when it has acted, asking to come back when
// it waits for something (a camera to answer, a rollout slot, an idle
// camera, the end of a crash-loop backoff).
type NodeReconciler struct {
	store    *Store
	engines  *Engines
	rollout  *Rollout
	requests *Requests
	expect   *Expectations
	opts     Options
	clock    Clock
	log      logr.Logger

	mu    sync.Mutex
	nodes map[string]*nodeMemory
}

// nodeMemory is what the reconciler remembers of a node between
// reconciles: what it cannot observe again.
type nodeMemory struct {
	crash crashTracker
	// starting is a camera fliswarm started whose readiness is not yet
	// known.
	starting *startingCamera
	// answered is the container whose camera answered the readiness probe.
	answered string
	// lastGood is the spec under which the node's camera last answered: a
	// halted rollout puts the node back to it.
	lastGood *v1.Swarm
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
}

type startingCamera struct {
	id    string
	since time.Time
	delay time.Duration
	// spec is the spec the container was created from; rollout says that
	// it replaced a running camera under a rollout slot.
	spec     *v1.Swarm
	revision string
	rollout  bool
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
	res, out, err := r.reconcile(ctx, node, t)
	if out.Err == nil && err != nil {
		out.Err = err
	}
	r.requests.finish(node, t, out, func() v1.NodeStatus { st, _ := r.store.NodeStatus(node); return st })
	return res, err
}

// reconcile is one pass over node. The Outcome tells operators' requests
// how it went; the error, when not nil, has the pass retried with backoff.
func (r *NodeReconciler) reconcile(ctx context.Context, node string, t ticket) (Result, Outcome, error) {
	spec, rev := r.store.Spec()
	if _, ok := spec.Nodes[node]; !ok {
		return Result{}, Outcome{Err: fmt.Errorf("%s: node is not configured", node), Final: true}, nil
	}
	if !r.store.IsEnabled(node) {
		// A disabled node is left as it is.
		return Result{}, Outcome{Err: fmt.Errorf("%s: node is not enabled", node), Final: true}, nil
	}
	mem := r.memory(node)
	now := r.clock.Now()
	prev, seen := r.store.Observed(node)
	st := newStatus(prev, seen, spec, node, rev, now)
	want, err := desired(spec, node)
	if err != nil {
		r.record(node, st, mem, nil, err)
		return Result{}, Outcome{Err: err, Final: true}, nil
	}

	// Observe.
	eng, err := r.probeNode(ctx, spec, node, st)
	if err != nil {
		mem.engineWasDown = true
		r.record(node, st, mem, nil, err)
		return Result{}, Outcome{Err: err, Final: true}, err
	}
	if mem.engineWasDown {
		// The engine came back and stopped the containers it found: not
		// the camera crashing, so it starts again at once.
		mem.engineWasDown = false
		mem.crash.forget()
	}
	have, err := r.inspect(ctx, eng, node, want, st)
	if err != nil {
		r.record(node, st, mem, nil, err)
		return Result{}, Outcome{Err: err}, err
	}

	// A camera we started: does it answer yet?
	if mem.starting != nil {
		if wait, waiting := r.checkStarting(ctx, spec, rev, node, mem, have, st); waiting {
			r.record(node, st, mem, nil, nil)
			return Result{RequeueAfter: wait}, Outcome{Err: fmt.Errorf("%s: waiting for the camera to answer", node)}, nil
		}
	}

	// Plan, against the spec this node follows now. When that is not the
	// spec in force (a halted rollout), the node is observed again against
	// it: its image, not the new one, is the one to find on the node.
	target, opts := r.target(spec, rev, node, mem, want, have)
	if !sameTarget(target, want) {
		if have, err = r.inspect(ctx, eng, node, target, st); err != nil {
			r.record(node, st, mem, nil, err)
			return Result{}, Outcome{Err: err}, err
		}
	}
	want = target
	opts.Force, opts.Redeploy, opts.Pulled = t.force, t.redeploy, opts.Pulled || t.pulled
	plan := PlanNode(node, want, have, opts)
	keeper := keeperOf(want, have)
	r.noteRunning(ctx, spec, node, mem, want, have, keeper, st)

	if plan.Empty() {
		r.store.SetRollout(node, r.rolloutStatus(rev, node, nil))
		r.record(node, st, mem, nil, nil)
		converged := keeper != nil && keeper.Running && keeper.State == "running" &&
			st.Container.SpecHash == want.Container.Hash && st.DeviceConnected
		out := Outcome{Converged: converged}
		if !converged {
			out.Err = fmt.Errorf("%s: %s", node, st.Condition(v1.ConditionContainerRunning).Message)
		}
		if _, _, halted := r.rollout.Halted(rev); halted {
			out.Final, out.Converged = true, false
			out.Err = r.haltError(rev)
		}
		return Result{}, out, nil
	}

	// Gates: a crash loop waits out its backoff; a change that takes a
	// running camera down waits for an idle camera and a rollout slot.
	if res, out, wait := r.crashGate(ctx, eng, node, mem, plan, keeper, st, t); wait {
		r.record(node, st, mem, nil, nil)
		return res, out, nil
	}
	var taken []Action
	if plan.Disruptive() {
		if res, wait := r.busyGate(spec, rev, node, mem, t); wait {
			r.record(node, st, mem, nil, nil)
			return res, Outcome{Err: fmt.Errorf("%s: update pending: camera busy", node)}, nil
		}
		// Pull before the slot is taken, so that every node pulls at once;
		// a node that waits for a slot pulls once per revision.
		if mem.prepulled == rev && st.Image.Present && !t.redeploy {
			opts.Pulled = true
			plan = PlanNode(node, want, have, opts)
		}
		for _, a := range plan.Actions {
			if a.Type != ActionPullImage {
				break
			}
			r.rollout.Pulling(node, rev)
			_, err := r.act(ctx, eng, node, spec, want, a, t)
			r.rollout.Pulled(node)
			if err != nil {
				r.record(node, st, mem, taken, err)
				return Result{}, Outcome{Actions: taken, Err: err}, err
			}
			taken = append(taken, a)
			opts.Pulled, mem.prepulled = true, rev
		}
		if !r.rollout.Acquire(node, rev) {
			r.store.SetRollout(node, &v1.RolloutStatus{Revision: rev, State: v1.RolloutPending, Message: "update pending: waiting for a rollout slot"})
			r.record(node, st, mem, taken, nil)
			return Result{RequeueAfter: slotRetry}, Outcome{Actions: taken, Err: fmt.Errorf("%s: waiting for a rollout slot", node)}, nil
		}
		r.store.SetRollout(node, &v1.RolloutStatus{Revision: rev, State: v1.RolloutUpdating, Message: "replacing the camera"})
		// The plan is made again now that the slot is held.
		if have, err = r.inspect(ctx, eng, node, want, st); err != nil {
			r.record(node, st, mem, taken, err)
			return Result{}, Outcome{Actions: taken, Err: err}, err
		}
		plan = PlanNode(node, want, have, opts)
		if plan.Empty() {
			// Converged meanwhile (the image it runs is the one wanted
			// after all): no camera goes down, the slot goes back.
			r.rollout.Release(node)
			r.store.SetRollout(node, nil)
		}
	}

	// Act.
	for _, a := range plan.Actions {
		id, err := r.act(ctx, eng, node, spec, want, a, t)
		if err != nil {
			r.record(node, st, mem, taken, err)
			if errors.Is(err, errNameInUse) {
				return Result{RequeueAfter: firstProbe}, Outcome{Actions: taken, Err: err}, nil
			}
			return Result{}, Outcome{Actions: taken, Err: err}, err
		}
		taken = append(taken, a)
		if id != "" {
			r.noteStarted(node, mem, spec, rev, id, a, want, t.redeploy)
		}
	}
	if _, err := r.inspect(ctx, eng, node, want, st); err != nil {
		r.record(node, st, mem, taken, err)
		return Result{}, Outcome{Actions: taken, Err: err}, err
	}
	r.record(node, st, mem, taken, nil)
	if mem.starting != nil {
		return Result{RequeueAfter: mem.starting.delay}, Outcome{Actions: taken, Err: fmt.Errorf("%s: waiting for the camera to answer", node)}, nil
	}
	return Result{RequeueAfter: firstProbe}, Outcome{Actions: taken}, nil
}
