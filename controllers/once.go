package controllers

import (
	"context"
	"sync"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// PlanAll returns what a reconcile of each node would do, in parallel,
// changing nothing (reconcile --dry-run).
func (c *NodeController) PlanAll(ctx context.Context, nodes []string, force bool) ([]Plan, []error) {
	plans := make([]Plan, len(nodes))
	errs := make([]error, len(nodes))
	eachNode(nodes, func(i int, node string) {
		plans[i], _, errs[i] = c.rec.plan(ctx, node, PlanOptions{Force: force})
	})
	return plans, errs
}

// ObserveAll observes every node in parallel and records their status
// (fliswarm status without a daemon).
func (c *NodeController) ObserveAll(ctx context.Context, nodes []string) []v1.NodeStatus {
	eachNode(nodes, func(_ int, node string) {
		_, st, err := c.rec.plan(ctx, node, PlanOptions{})
		if err != nil {
			st.LastError = err.Error()
		}
		c.store.SetObserved(*st)
	})
	out := make([]v1.NodeStatus, 0, len(nodes))
	for _, n := range nodes {
		if st, ok := c.store.NodeStatus(n); ok {
			out = append(out, st)
		}
	}
	return out
}

// plan observes a node (its camera included) and returns what a reconcile
// would do, changing nothing.
func (r *NodeReconciler) plan(ctx context.Context, node string, opts PlanOptions) (Plan, *v1.NodeStatus, error) {
	spec, rev := r.store.Spec()
	st := newStatus(v1.NodeStatus{}, false, spec, node, rev, r.clock.Now())
	want, err := desired(spec, node)
	if err != nil {
		return Plan{Node: node}, st, err
	}
	eng, err := r.probeNode(ctx, spec, node, st)
	if err != nil {
		return Plan{Node: node}, st, err
	}
	have, err := r.inspect(ctx, eng, node, want, st)
	if err != nil {
		return Plan{Node: node}, st, err
	}
	if k := keeperOf(want, have); k != nil && k.State == "running" {
		st.DeviceConnected = r.cameraAnswers(ctx, spec, node) == nil
	}
	return PlanNode(node, want, have, opts), st, nil
}

// eachNode runs f for every node concurrently (a dead node never holds up
// the others).
func eachNode(nodes []string, f func(i int, node string)) {
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Go(func() { f(i, node) })
	}
	wg.Wait()
}
