package controllers

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

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
	have, err := r.inspect(ctx, eng, node, want, st, nil)
	if err != nil {
		return Plan{Node: node}, st, err
	}
	if k := keeperOf(want, have); k != nil && k.State == "running" {
		r.checkPort(ctx, spec, node)
	}
	return PlanNode(node, want, have, opts), st, nil
}

// Without a daemon there are no camera clients. A one-shot `fliswarm
// status` or `reconcile` judges a camera up when its container runs and
// its port accepts a connection (no handshake: the camera's identity is
// not checked), and reports it through the same setter as the camera
// clients do (SetCamera), so readiness and ready_timeout work the same.

// portEvery is how often a one-shot reconcile looks at the cameras'
// ports.
const portEvery = 100 * time.Millisecond

// checkPort reports whether node's camera port accepts a connection.
func (r *NodeReconciler) checkPort(ctx context.Context, spec *v1.Swarm, node string) {
	n := spec.Nodes[node]
	err := r.opts.DialCamera(ctx, net.JoinHostPort(n.Host, strconv.Itoa(n.Port)))
	reason := ""
	if err != nil {
		reason = err.Error()
	}
	r.store.SetCamera(node, err == nil, reason)
}

// watchPorts checks the ports of nodes whose camera container runs,
// every portEvery, until ctx ends.
func (c *NodeController) watchPorts(ctx context.Context, nodes []string) {
	for {
		spec, _ := c.store.Spec()
		for _, n := range nodes {
			if st, ok := c.store.Observed(n); ok && st.Container != nil && st.Container.State == "running" {
				c.rec.checkPort(ctx, spec, n)
			}
		}
		tick := make(chan struct{})
		t := c.opts.Clock.AfterFunc(portEvery, func() { close(tick) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-tick:
		}
	}
}

// dialCamera is Options.DialCamera's default: a TCP connection accepted.
func dialCamera(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return conn.Close()
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
