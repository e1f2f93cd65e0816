package controllers

import (
	"context"
	"slices"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// NodeResult is the outcome of converging one node.
type NodeResult struct {
	Node string `json:"node"`
	// Actions are every action taken, over all attempts.
	Actions []Action `json:"actions"`
	// Attempts is how many reconciles ran.
	Attempts int `json:"attempts"`
	// Error is the last error, "" when the node converged.
	Error  string        `json:"error,omitempty"`
	Status v1.NodeStatus `json:"status"`
}

// Converged reports whether the node ended converged.
func (n NodeResult) Converged() bool { return n.Error == "" }

// ConvergeOnce reconciles every node in parallel without the daemon's
// queue, retrying each failure with backoff until the node converges or
// ctx ends (fliswarm reconcile). Rollouts still respect max_unavailable.
func (r *Reconciler) ConvergeOnce(ctx context.Context, nodes []string, opts PlanOptions) []NodeResult {
	return eachNode(nodes, func(node string) NodeResult {
		res := NodeResult{Node: node}
		retry := r.queue.newBackoff()
		force := opts.Force
		for {
			res.Attempts++
			taken, err := r.Reconcile(ctx, node, PlanOptions{Force: force})
			// A retry repeats the actions that are always planned (a pull
			// under policy always): list each once.
			for _, a := range taken.Actions {
				if !slices.Contains(res.Actions, a) {
					res.Actions = append(res.Actions, a)
				}
			}
			res.Status, _ = r.NodeStatus(node)
			if err == nil {
				res.Error = ""
				return res
			}
			res.Error = err.Error()
			// A forced pass that failed before acting is retried forced;
			// once it acted, plain passes finish the job.
			force = force && len(taken.Actions) == 0
			select {
			case <-ctx.Done():
				return res
			case <-time.After(retry.NextBackOff()):
			}
		}
	})
}

// PlanAll returns what a reconcile of each node would do, in parallel,
// changing nothing.
func (r *Reconciler) PlanAll(ctx context.Context, nodes []string, opts PlanOptions) ([]Plan, []error) {
	type result struct {
		plan Plan
		err  error
	}
	results := eachNode(nodes, func(node string) result {
		p, _, err := r.Plan(ctx, node, opts)
		return result{p, err}
	})
	plans := make([]Plan, len(nodes))
	errs := make([]error, len(nodes))
	for i, res := range results {
		plans[i], errs[i] = res.plan, res.err
	}
	return plans, errs
}

// ObserveAll observes every node in parallel and records their status
// (fliswarm status without a daemon).
func (r *Reconciler) ObserveAll(ctx context.Context, nodes []string) []v1.NodeStatus {
	return eachNode(nodes, func(node string) v1.NodeStatus {
		_, _, st, err := r.Observe(ctx, node)
		if err != nil {
			st.LastError = err.Error()
		}
		return *st
	})
}

// eachNode runs f for every node concurrently (a dead node never holds up
// the others) and returns the results in the order of nodes.
func eachNode[T any](nodes []string, f func(node string) T) []T {
	out := make([]T, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Go(func() { out[i] = f(node) })
	}
	wg.Wait()
	return out
}
