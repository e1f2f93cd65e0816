package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// fakeEngine is a small in-memory engine: enough state for the
// reconciler's logic, no Docker semantics beyond what it relies on.
type fakeEngine struct {
	mu         sync.Mutex
	node       string
	containers map[string]engine.Container // by id
	volumes    map[string]engine.Volume
	images     map[string]string // ref → id
	pullErr    error
	nextID     int
	calls      []string
	down       *atomic.Int32 // shared across nodes: cameras down right now
	maxDown    *atomic.Int32
}

func newFake(node string, down, maxDown *atomic.Int32) *fakeEngine {
	return &fakeEngine{node: node, containers: map[string]engine.Container{}, volumes: map[string]engine.Volume{},
		images: map[string]string{}, down: down, maxDown: maxDown}
}

func (f *fakeEngine) record(s string) { f.calls = append(f.calls, s) }

func (f *fakeEngine) Ping(context.Context) error { return nil }
func (f *fakeEngine) ListContainers(_ context.Context, labels map[string]string, names ...string) ([]engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []engine.Container
	for _, c := range f.containers {
		match := len(labels) > 0
		for k, v := range labels {
			if c.Labels[k] != v {
				match = false
			}
		}
		for _, n := range names {
			if c.Name == n {
				match = true
			}
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}
func (f *fakeEngine) InspectContainer(_ context.Context, id string) (engine.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.containers[id]; ok {
		return c, nil
	}
	return engine.Container{}, errdefs.ErrNotFound
}
func (f *fakeEngine) CreateContainer(_ context.Context, name string, cfg *container.Config, _ *container.HostConfig) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	id := fmt.Sprintf("%s-c%d", f.node, f.nextID)
	f.containers[id] = engine.Container{ID: id, Name: name, Image: cfg.Image, ImageID: f.images[cfg.Image], State: "created", Labels: cfg.Labels}
	f.record("create " + name)
	return id, nil
}
func (f *fakeEngine) StartContainer(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	c.State, c.Running = "running", true
	f.containers[id] = c
	f.record("start " + c.Name)
	f.down.Add(-1)
	return nil
}
func (f *fakeEngine) RemoveContainer(_ context.Context, id string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return nil
	}
	if c.Running {
		if d := f.down.Add(1); d > f.maxDown.Load() {
			f.maxDown.Store(d)
		}
	}
	delete(f.containers, id)
	f.record("remove " + c.Name)
	time.Sleep(5 * time.Millisecond) // let other nodes' rollouts overlap if they can
	return nil
}
func (f *fakeEngine) InspectImage(_ context.Context, ref string) (engine.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.images[ref]; ok {
		return engine.Image{ID: id}, nil
	}
	return engine.Image{}, errdefs.ErrNotFound
}
func (f *fakeEngine) PullImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("pull " + ref)
	if f.pullErr != nil {
		return f.pullErr
	}
	f.images[ref] = "sha256:" + ref
	return nil
}
func (f *fakeEngine) InspectVolume(_ context.Context, name string) (engine.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v, ok := f.volumes[name]; ok {
		return v, nil
	}
	return engine.Volume{}, errdefs.ErrNotFound
}
func (f *fakeEngine) CreateVolume(_ context.Context, name, driver string, opts, labels map[string]string) (engine.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := engine.Volume{Name: name, Driver: driver, Options: opts, Labels: labels}
	f.volumes[name] = v
	f.record("create-volume " + name)
	return v, nil
}
func (f *fakeEngine) RemoveVolume(_ context.Context, name string, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.volumes, name)
	return nil
}
func (f *fakeEngine) Events(ctx context.Context) (<-chan engine.Event, <-chan error) {
	evs, errs := make(chan engine.Event), make(chan error, 1)
	go func() { <-ctx.Done(); errs <- ctx.Err(); close(evs) }()
	return evs, errs
}
func (f *fakeEngine) Close() error { return nil }

func (f *fakeEngine) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.calls...)
}

func fakeSwarm(nodes ...string) *v1.Swarm {
	s := &v1.Swarm{Registry: "reg:5000", Image: "sdss/flicamera:latest", EnabledNodes: nodes, Nodes: map[string]v1.Node{},
		Volumes: map[string]v1.Volume{"data": {Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}}}}
	for i, n := range nodes {
		s.Nodes[n] = v1.Node{Host: fmt.Sprintf("10.0.0.%d", 11+i), Port: 19995, DockerClient: fmt.Sprintf("tcp://10.0.0.%d:2375", 11+i)}
	}
	s.SetDefaults()
	return s
}

func newFakeReconciler(t *testing.T, spec *v1.Swarm) (*Reconciler, map[string]*fakeEngine, *atomic.Int32) {
	var down, maxDown atomic.Int32
	fakes := map[string]*fakeEngine{}
	for n := range spec.Nodes {
		fakes[n] = newFake(n, &down, &maxDown)
	}
	r := New(spec, "rev1", Options{
		NewEngine:    func(node, _ string) (Engine, error) { return fakes[node], nil },
		Ping:         func(context.Context, string, time.Duration, int) error { return nil },
		Probe:        func(context.Context, string) error { return nil },
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	})
	return r, fakes, &maxDown
}

func TestReconcileColdStartAndIdempotence(t *testing.T) {
	r, fakes, _ := newFakeReconciler(t, fakeSwarm("gfa1"))
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, "gfa1", PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "pull reg:5000/sdss/flicamera:latest,create-volume data,create flicamera-gfa1,start flicamera-gfa1"
	if got := strings.Join(fakes["gfa1"].Calls(), ","); got != want {
		t.Fatalf("calls %s\nwant  %s", got, want)
	}
	st, _ := r.NodeStatus("gfa1")
	if !st.Ready() || st.ObservedRevision != "rev1" || st.LastError != "" || st.Condition(v1.ConditionConverged) == nil {
		t.Fatalf("status after cold start: %+v", st)
	}
	taken, err := r.Reconcile(ctx, "gfa1", PlanOptions{})
	if err != nil || len(taken.Actions) != 0 || len(fakes["gfa1"].Calls()) != 4 {
		t.Fatalf("second reconcile acted: %v %v %v", taken.Actions, err, fakes["gfa1"].Calls())
	}
}

func TestPullFailureNeverRemovesARunningCamera(t *testing.T) {
	spec := fakeSwarm("gfa1")
	r, fakes, _ := newFakeReconciler(t, spec)
	ctx := context.Background()
	if _, err := r.Reconcile(ctx, "gfa1", PlanOptions{}); err != nil {
		t.Fatal(err)
	}
	f := fakes["gfa1"]
	f.mu.Lock()
	f.pullErr = errors.New("registry unreachable")
	f.mu.Unlock()
	next := fakeSwarm("gfa1")
	next.Image = "sdss/flicamera:v2"
	r.SetSpec(next, "rev2")
	_, err := r.Reconcile(ctx, "gfa1", PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "pull-image") {
		t.Fatalf("error %v", err)
	}
	for _, c := range f.Calls()[4:] {
		if strings.HasPrefix(c, "remove") || strings.HasPrefix(c, "create") {
			t.Fatalf("acted after a failed pull: %v", f.Calls())
		}
	}
	st, _ := r.NodeStatus("gfa1")
	if st.Container == nil || st.Container.State != "running" || !strings.Contains(st.LastError, "registry unreachable") {
		t.Fatalf("status: %+v", st)
	}
	if c := st.Condition(v1.ConditionConverged); c == nil || c.Status {
		t.Fatalf("converged condition %+v", c)
	}
}

func TestRolloutTakesOneCameraDownAtATime(t *testing.T) {
	nodes := []string{"gfa1", "gfa2", "gfa3", "fvc"}
	r, fakes, maxDown := newFakeReconciler(t, fakeSwarm(nodes...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, res := range r.ConvergeOnce(ctx, nodes, PlanOptions{}) {
		if !res.Converged() {
			t.Fatalf("%s: %s", res.Node, res.Error)
		}
	}
	fakes["gfa1"].down.Store(0) // the cold start's starts replaced nothing
	next := fakeSwarm(nodes...)
	next.Image = "sdss/flicamera:v2"
	r.SetSpec(next, "rev2")
	for _, res := range r.ConvergeOnce(ctx, nodes, PlanOptions{}) {
		if !res.Converged() || len(res.Actions) == 0 {
			t.Fatalf("%s: %s %v", res.Node, res.Error, res.Actions)
		}
	}
	if m := maxDown.Load(); m != 1 {
		t.Fatalf("%d cameras were down at once with max_unavailable 1", m)
	}
}

func TestConvergeWaitsThroughTheQueue(t *testing.T) {
	r, fakes, _ := newFakeReconciler(t, fakeSwarm("gfa1", "gfa2"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	res := r.ConvergeResults(wctx, []string{"gfa1", "gfa2"}, true)
	for _, n := range res {
		if n.Error != "" || !n.Status.Ready() {
			t.Fatalf("%s: %s", n.Node, n.Error)
		}
	}
	// Forced: the already running camera was replaced.
	before := fakes["gfa1"].Calls()
	res = r.ConvergeResults(wctx, []string{"gfa1"}, true)
	after := fakes["gfa1"].Calls()
	if len(after) <= len(before) || !strings.Contains(strings.Join(after[len(before):], ","), "remove flicamera-gfa1") {
		t.Fatalf("forced converge did not recreate: %v", after[len(before):])
	}
	if len(res[0].Actions) == 0 {
		t.Fatal("forced converge reported no actions")
	}
	// Disabled at run time: left alone, and Converge does not hang.
	if !r.SetEnabled("gfa2", false) {
		t.Fatal("SetEnabled")
	}
	if got := r.Enabled(); len(got) != 1 || got[0] != "gfa1" {
		t.Fatalf("Enabled = %v", got)
	}
}
