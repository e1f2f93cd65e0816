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
	out := make([]NodeResult, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := NodeResult{Node: node}
			delay := r.opts.RetryInitial
			for {
				res.Attempts++
				taken, err := r.Reconcile(ctx, node, opts)
				// A retry repeats the actions that are always planned
				// (a pull under policy always): list each once.
				for _, a := range taken.Actions {
					if !slices.Contains(res.Actions, a) {
						res.Actions = append(res.Actions, a)
					}
				}
				res.Status, _ = r.NodeStatus(node)
				if err == nil {
					res.Error = ""
					break
				}
				res.Error = err.Error()
				// A forced pass that failed before acting is retried
				// forced; once it acted, plain passes finish the job.
				opts.Force = opts.Force && len(taken.Actions) == 0
				select {
				case <-ctx.Done():
				case <-time.After(delay):
					delay = min(delay*2, r.opts.RetryMax)
					continue
				}
				break
			}
			out[i] = res
		}()
	}
	wg.Wait()
	return out
}

// PlanAll returns what a reconcile of each node would do, in parallel,
// changing nothing.
func (r *Reconciler) PlanAll(ctx context.Context, nodes []string, opts PlanOptions) ([]Plan, []error) {
	plans := make([]Plan, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plans[i], _, errs[i] = r.Plan(ctx, node, opts)
		}()
	}
	wg.Wait()
	return plans, errs
}

// ObserveAll observes every node in parallel and records their status
// (fliswarm status without a daemon).
func (r *Reconciler) ObserveAll(ctx context.Context, nodes []string) []v1.NodeStatus {
	out := make([]v1.NodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, st, err := r.Observe(ctx, node)
			if err != nil {
				st.LastError = err.Error()
			}
			out[i] = *st
		}()
	}
	wg.Wait()
	return out
}
