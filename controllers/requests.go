package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Requests tracks operators' requests to converge nodes (`fliswarm
// reconcile`, the actor's `reconnect`): each request enqueues its nodes
// (a source) and waits for the outcome of a reconcile that started after
// it. A request may ask for a redeploy (redeploy.go), and skips, once,
// the crash-loop backoff and the wait for an idle camera.
type Requests struct {
	mu      sync.Mutex
	gen     map[string]uint64 // last request per node
	bypass  map[string]bool
	waiters map[string][]*waiter
	enqueue func(node string)
}

type waiter struct {
	gen      uint64
	done     chan struct{}
	result   v1.NodeResult
	finished bool
	opts     v1.ConvergeOptions
	// pulled, volumes and deployed: a redeploy's pull, the recreation of
	// its volumes (Force) and its new container are done (later passes do
	// not take them again).
	pulled, volumes, deployed bool
	// progressMu orders Progress calls with the request's end: closed is
	// set once Converge has returned for this waiter.
	progressMu sync.Mutex
	closed     bool
}

// Outcome is what one reconcile of a node did and how it ended.
type Outcome struct {
	Actions []v1.Action
	// Err is the reconcile's error, or why the node is not yet converged.
	Err error
	// Converged: the node's camera runs the current spec and answers.
	Converged bool
	// Final: the node will not converge soon by itself (unreachable,
	// engine down, crash loop, halted rollout, not enabled); a request
	// ends with Err.
	Final bool
}

// ticket is a reconcile's view of the requests made before it started.
type ticket struct {
	node   string
	gen    uint64
	bypass bool
	// redeploy: a request waits for the image to be pulled (unless pulled)
	// and the container replaced; force: and the volumes recreated.
	redeploy, force, pulled bool
	// q reports the pass's steps to the requests it serves (nil: none).
	q *Requests
	// asked: an operator's request waits for this pass (it then pings
	// the node, whatever its event stream says).
	asked bool
}

// NewRequests returns a tracker that enqueues requested nodes with
// enqueue.
func NewRequests(enqueue func(node string)) *Requests {
	return &Requests{
		gen: map[string]uint64{}, bypass: map[string]bool{},
		waiters: map[string][]*waiter{}, enqueue: enqueue,
	}
}

// begin is called as a reconcile of node starts: it takes the pending
// bypass flag, and the redeploy still owed to a waiting request.
func (q *Requests) begin(node string) ticket {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := ticket{node: node, gen: q.gen[node], bypass: q.bypass[node], q: q, pulled: true, asked: len(q.waiters[node]) > 0}
	delete(q.bypass, node)
	for _, w := range q.waiters[node] {
		if !w.wantsRedeploy() || w.deployed {
			continue
		}
		t.redeploy = true
		t.force = t.force || (w.opts.Force && !w.volumes)
		t.pulled = t.pulled && w.pulled
	}
	t.pulled = t.pulled && t.redeploy
	return t
}

// finish records a reconcile's outcome for every request made before it
// started, and ends those it settles.
func (q *Requests) finish(node string, t ticket, out Outcome, status func() v1.NodeStatus) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var keep []*waiter
	for _, w := range q.waiters[node] {
		if w.gen > t.gen {
			keep = append(keep, w)
			continue
		}
		w.result.Attempts++
		for _, a := range out.Actions {
			if !slices.Contains(w.result.Actions, a) {
				w.result.Actions = append(w.result.Actions, a)
			}
		}
		w.result.Error = ""
		if out.Err != nil {
			w.result.Error = out.Err.Error()
		}
		// A redeploy is over once its new container answers: a pass that
		// found nothing to do before the replacement does not end it.
		settled := out.Final || (out.Converged && (!w.wantsRedeploy() || w.deployed))
		if settled {
			w.result.Status = status()
			w.finished = true
			close(w.done)
			continue
		}
		keep = append(keep, w)
	}
	q.waiters[node] = keep
}

// Converge asks for a reconcile of each node now and waits until each has
// converged, failed for good, or ctx ended; then it returns, per node, the
// actions taken for the request, the last error and the status. With
// opts.Redeploy (or Force) each node's image is pulled and its container
// replaced first (redeploy.go).
func (q *Requests) Converge(ctx context.Context, nodes []string, opts v1.ConvergeOptions, status func(node string) v1.NodeStatus) []v1.NodeResult {
	ws := make([]*waiter, len(nodes))
	q.mu.Lock()
	for i, n := range nodes {
		q.gen[n]++
		ws[i] = &waiter{gen: q.gen[n], done: make(chan struct{}), result: v1.NodeResult{Node: n}, opts: opts}
		q.waiters[n] = append(q.waiters[n], ws[i])
		q.bypass[n] = true
	}
	q.mu.Unlock()
	defer func() {
		for _, w := range ws {
			w.close()
		}
	}()
	for _, n := range nodes {
		q.enqueue(n)
	}
	out := make([]v1.NodeResult, len(nodes))
	for i, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
		}
		q.mu.Lock()
		if !w.finished {
			q.waiters[w.result.Node] = slices.DeleteFunc(q.waiters[w.result.Node], func(x *waiter) bool { return x == w })
			w.result.Status = status(w.result.Node)
			if w.result.Error == "" {
				w.result.Error = notConvergedError(w.result.Status, ctx.Err()).Error()
			}
		}
		out[i] = w.result
		q.mu.Unlock()
	}
	return out
}

// notConvergedError says why a node that ran out of time is not
// converged, from its status.
func notConvergedError(st v1.NodeStatus, cause error) error {
	if cause == nil {
		cause = errors.New("not converged")
	}
	if st.Phase != "" && st.Phase != v1.PhaseReady {
		return fmt.Errorf("%s: %s: %s (%w)", st.Name, st.Phase, st.Message, cause)
	}
	return fmt.Errorf("%s: not converged: %w", st.Name, cause)
}
