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
// it. A request may force the recreation of volumes and container, and
// skips, once, the crash-loop backoff and the wait for an idle camera.
type Requests struct {
	mu      sync.Mutex
	gen     map[string]uint64 // last request per node
	force   map[string]bool
	bypass  map[string]bool
	waiters map[string][]*waiter
	enqueue func(node string)
}

type waiter struct {
	gen      uint64
	done     chan struct{}
	result   v1.NodeResult
	finished bool
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
	gen    uint64
	force  bool
	bypass bool
}

// NewRequests returns a tracker that enqueues requested nodes with
// enqueue.
func NewRequests(enqueue func(node string)) *Requests {
	return &Requests{
		gen: map[string]uint64{}, force: map[string]bool{}, bypass: map[string]bool{},
		waiters: map[string][]*waiter{}, enqueue: enqueue,
	}
}

// begin is called as a reconcile of node starts: it takes the pending
// force and bypass flags.
func (q *Requests) begin(node string) ticket {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := ticket{gen: q.gen[node], force: q.force[node], bypass: q.bypass[node]}
	delete(q.force, node)
	delete(q.bypass, node)
	return t
}

// retryForced puts back a force flag that a failed reconcile could not
// use.
func (q *Requests) retryForced(node string) {
	q.mu.Lock()
	q.force[node] = true
	q.mu.Unlock()
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
		if out.Converged || out.Final {
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
// actions taken for the request, the last error and the status.
func (q *Requests) Converge(ctx context.Context, nodes []string, force bool, status func(node string) v1.NodeStatus) []v1.NodeResult {
	ws := make([]*waiter, len(nodes))
	q.mu.Lock()
	for i, n := range nodes {
		q.gen[n]++
		ws[i] = &waiter{gen: q.gen[n], done: make(chan struct{}), result: v1.NodeResult{Node: n}}
		q.waiters[n] = append(q.waiters[n], ws[i])
		q.bypass[n] = true
		if force {
			q.force[n] = true
		}
	}
	q.mu.Unlock()
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
