package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// fakeWorld is the nodes around a controller under test: their engines,
// whether their hosts answer ping, whether their cameras answer a probe
// or are busy, and a record of every change the engines made, in order.
type fakeWorld struct {
	clock   *fakeClock
	engines map[string]*fakeEngine
	emitted atomic.Int64 // events sent to the event streams

	mu   sync.Mutex
	last time.Time // the engines' clock: strictly increasing
	ops  []fakeOp
	up   map[string]bool
	// maxDown is the most nodes without a running camera at once since
	// markDown.
	maxDown int
	// Pulls: how many started, how many at once at most; a pull waits
	// (up to 2 s) until pullBarrier pulls have started.
	pullsStarted, pullsNow, maxPulls, pullBarrier int
	hostDown                                      map[string]bool
	busy                                          map[string]string
	// pinged counts the ICMP pings (Options.Ping).
	pinged int
	// hung images run but their camera never answers.
	hung map[string]bool
	// onChange reports node's camera state after each change of its
	// engine (the camera client).
	onChange func(node string, err error)
	// registry is what each tag (repo:tag) names at the registry;
	// manifests every digest ever pushed; registryErr, when set, is the
	// registry failing.
	registry    map[string]string
	manifests   map[string]bool
	registryErr error
}

// push makes tag name digest at the registry.
func (w *fakeWorld) push(tag, digest string) {
	w.set(func() { w.registry[tag] = digest; w.manifests[digest] = true })
}

func (w *fakeWorld) registryDigest(ref string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.registryErr != nil {
		return "", w.registryErr
	}
	d, ok := w.registry[ref]
	if !ok {
		return "", notFound("manifest", ref)
	}
	return d, nil
}

// resolve is the repo and digest a pull of ref gets from the registry,
// known false for a ref the registry does not hold (the fake then makes
// up an image).
func (w *fakeWorld) resolve(ref string) (repo, digest string, known bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r, d, ok := strings.Cut(ref, "@"); ok {
		return r, d, w.manifests[d]
	}
	d, ok := w.registry[ref]
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref, d, true
}

// registryImage is the image of digest: its ID follows from the digest.
func registryImage(repo, digest string) engine.Image {
	sum := sha256.Sum256([]byte("config of " + digest))
	return engine.Image{ID: "sha256:" + hex.EncodeToString(sum[:]), RepoDigests: []string{repo + "@" + digest}}
}

type fakeOp struct {
	Node, Op, Target string
	At               time.Time
}

func (o fakeOp) String() string { return o.Node + " " + o.Op + " " + o.Target }

func newFakeWorld(clock *fakeClock, nodes []string) *fakeWorld {
	w := &fakeWorld{clock: clock, engines: map[string]*fakeEngine{}, up: map[string]bool{},
		hostDown: map[string]bool{}, busy: map[string]string{}, hung: map[string]bool{},
		registry: map[string]string{}, manifests: map[string]bool{}}
	for _, n := range nodes {
		w.engines[n] = newFakeEngine(w, n)
	}
	return w
}

// stamp is the engines' time: the fake clock's, made strictly
// increasing as a real engine's nanosecond timestamps are.
func (w *fakeWorld) stamp() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.clock.Now()
	if !t.After(w.last) {
		t = w.last.Add(time.Microsecond)
	}
	w.last = t
	return t
}

func (w *fakeWorld) record(node, op, target string, up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, fakeOp{Node: node, Op: op, Target: target, At: w.clock.Now()})
	w.up[node] = up
	w.maxDown = max(w.maxDown, w.downLocked())
}

// note records an op that changes nothing.
func (w *fakeWorld) note(node, op, target string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, fakeOp{Node: node, Op: op, Target: target, At: w.clock.Now()})
}

func (w *fakeWorld) downLocked() int {
	n := 0
	for node := range w.engines {
		if !w.up[node] {
			n++
		}
	}
	return n
}

// markDown starts counting the cameras down at once afresh; it returns
// the ops recorded so far, to tell the ops that follow.
func (w *fakeWorld) markDown() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.maxDown = w.downLocked()
	return len(w.ops)
}

func (w *fakeWorld) opsSince(mark int) []fakeOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ops[mark:])
}

// pulling is a pull under way on node.
func (w *fakeWorld) pulling(ctx context.Context, node, ref string) error {
	w.note(node, "pull", ref)
	w.mu.Lock()
	w.pullsStarted++
	w.pullsNow++
	w.maxPulls = max(w.maxPulls, w.pullsNow)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.pullsNow--
		w.mu.Unlock()
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		w.mu.Lock()
		ok := w.pullsStarted >= w.pullBarrier
		w.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (w *fakeWorld) set(f func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f()
}

// pings is how many ICMP pings were made.
func (w *fakeWorld) pings() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pinged
}

// ping is Options.Ping.
func (w *fakeWorld) ping(_ context.Context, host string, _ time.Duration, _ int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pinged++
	if w.hostDown[host] {
		return fmt.Errorf("no reply from %s", host)
	}
	return nil
}

// cameraUp is the camera client's state of node: connected when the
// node's camera container runs an image that is not hung; e.mu held.
func (w *fakeWorld) cameraUpLocked(e *fakeEngine) error {
	for _, c := range e.containers {
		if c.State == "running" && (c.Labels[render.LabelNode] == e.node || strings.HasSuffix(c.Name, "-"+e.node)) {
			w.mu.Lock()
			hung := w.hung[c.Image]
			w.mu.Unlock()
			if hung {
				return fmt.Errorf("dial tcp: connection refused")
			}
			return nil
		}
	}
	return fmt.Errorf("dial tcp: connection refused")
}

// dialCamera is Options.DialCamera (a one-shot reconcile's readiness).
func (w *fakeWorld) dialCamera(spec *v1.Swarm) func(context.Context, string) error {
	return func(_ context.Context, addr string) error {
		host, _, _ := strings.Cut(addr, ":")
		for n, nd := range spec.Nodes {
			if nd.Host == host {
				e := w.engines[n]
				e.mu.Lock()
				defer e.mu.Unlock()
				return w.cameraUpLocked(e)
			}
		}
		return fmt.Errorf("dial tcp %s: no route to host", addr)
	}
}

// isBusy is Options.Busy.
func (w *fakeWorld) isBusy(node string) (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	why, ok := w.busy[node]
	return ok, why
}

// harness runs a NodeController against a fake world on a fake clock.
type harness struct {
	t     *testing.T
	clock *fakeClock
	w     *fakeWorld
	ctl   *NodeController
	// stop ends the controller started by start.
	stop func()

	logMu sync.Mutex
	logs  []string
}

// testSwarm is a defaulted spec of nodes, all enabled, with one volume.
func testSwarm(nodes ...string) *v1.Swarm {
	s := &v1.Swarm{
		Image:        "sdss5/flicamera:v1",
		EnabledNodes: slices.Clone(nodes),
		Nodes:        map[string]v1.Node{},
		Volumes: map[string]v1.Volume{
			"data": {Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}},
		},
	}
	for i, n := range nodes {
		host := fmt.Sprintf("10.1.0.%d", 11+i)
		s.Nodes[n] = v1.Node{Host: host, Port: 19995, DockerClient: "tcp://" + host + ":2375", Category: "gfa"}
	}
	s.SetDefaults()
	return s
}

// newHarness builds a controller for spec over a world holding every
// node of spec. Run it with start.
func newHarness(t *testing.T, spec *v1.Swarm, rev string, tweak ...func(*Options)) *harness {
	clock := newFakeClock()
	return newHarnessIn(t, clock, newFakeWorld(clock, spec.NodeNames()), spec, rev, tweak...)
}

// restarted stops h's controller and returns a new one, with nothing in
// memory, over the same world and clock (fliswarm restarted). Run it
// with start.
func (h *harness) restarted(spec *v1.Swarm, rev string) *harness {
	h.stop()
	return newHarnessIn(h.t, h.clock, h.w, spec, rev)
}

func newHarnessIn(t *testing.T, clock *fakeClock, w *fakeWorld, spec *v1.Swarm, rev string, tweak ...func(*Options)) *harness {
	h := &harness{t: t, clock: clock, w: w}
	opts := Options{
		Logger: funcr.New(func(prefix, args string) {
			h.logMu.Lock()
			h.logs = append(h.logs, prefix+" "+args)
			h.logMu.Unlock()
		}, funcr.Options{Verbosity: 1}),
		NewEngine: func(node string, _ v1.EngineConnection) (Engine, error) {
			if e, ok := h.w.engines[node]; ok {
				return e, nil
			}
			return nil, fmt.Errorf("no engine for %s", node)
		},
		Ping: h.w.ping, DialCamera: h.w.dialCamera(spec), Busy: h.w.isBusy,
		Clock: h.clock,
	}
	for _, f := range tweak {
		f(&opts)
	}
	h.ctl = New(spec, rev, opts)
	// The camera clients: each engine change reports every camera's state,
	// as the actor's clients would on their own, through SetCamera.
	h.w.onChange = func(node string, err error) {
		reason := ""
		if err != nil {
			reason = err.Error()
		}
		h.ctl.SetCamera(node, err == nil, reason)
	}
	for n, e := range h.w.engines { // the clients' first connection
		e.mu.Lock()
		err := h.w.cameraUpLocked(e)
		e.mu.Unlock()
		h.w.onChange(n, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			h.logMu.Lock()
			defer h.logMu.Unlock()
			t.Logf("controller log (last lines):\n%s", strings.Join(h.logs[max(0, len(h.logs)-80):], "\n"))
		}
	})
	return h
}

// start runs the controller until the test ends, waits for the event
// streams of the enabled nodes and for the first reconciles to be over.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.ctl.Run(ctx); close(done) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); <-done }) }
	h.t.Cleanup(h.stop)
	for _, n := range h.ctl.Enabled() {
		h.waitFor("the event stream of "+n, func() bool { return h.w.engines[n].Streams() > 0 })
	}
	h.settle()
}

// probed lets the time pass for the readiness probe of the cameras just
// started (the reconciler comes back for it after firstProbe).
func (h *harness) probed() { h.advance(firstProbe) }

func (h *harness) eng(node string) *fakeEngine { return h.w.engines[node] }

// idle reports that no key waits and none is being processed (delayed
// adds aside).
func (q *Queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order) == 0 && len(q.processing) == 0
}

// settle waits until the controller has nothing left to do without the
// clock moving: the resync has enqueued what its last tick asked for (its
// next timer is set), every event sent has been handled (Sync), no node
// is queued or being reconciled, and no event was sent meanwhile.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := h.w.emitted.Load()
		resync := h.clock.ResyncPending()
		if spec, _ := h.ctl.Spec(); spec.ImageUpdateInterval > 0 {
			resync = resync && h.clock.ImagePending()
		}
		for _, e := range h.w.engines {
			e.Sync()
		}
		if resync && h.ctl.queue.idle() && h.w.emitted.Load() == n {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatal("the controller did not settle within 10 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// advance moves the fake clock d forward one due timer at a time,
// letting the controller settle after each.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.clock.Now().Add(d)
	for {
		h.settle()
		next, ok := h.clock.Next()
		if !ok || next.After(end) {
			h.clock.Step(end.Sub(h.clock.Now()))
			h.settle()
			return
		}
		h.clock.Step(next.Sub(h.clock.Now()))
	}
}

// waitFor polls cond for up to 10 s of real time.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	eventually(h.t, what, cond)
}

func (h *harness) status(node string) v1.NodeStatus {
	h.t.Helper()
	st, ok := h.ctl.NodeStatus(node)
	if !ok {
		h.t.Fatalf("no status for %s", node)
	}
	return st
}

// logCount is how many log lines contain s.
func (h *harness) logCount(s string) int {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	n := 0
	for _, l := range h.logs {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// camera is the node's camera container as the engine has it.
func (h *harness) camera(node string) (c struct {
	State, Hash string
	ExitCode    int
}) {
	spec, _ := h.ctl.Spec()
	ctr, ok := h.eng(node).Container(spec.ContainerNameFor(node))
	if !ok {
		return c
	}
	c.State, c.Hash, c.ExitCode = ctr.State, ctr.Labels[render.LabelSpecHash], ctr.ExitCode
	return c
}

// hashOf is the spec hash of node's container under spec.
func hashOf(t *testing.T, spec *v1.Swarm, node string) string {
	t.Helper()
	c, err := render.ForNode(spec, node)
	if err != nil {
		t.Fatal(err)
	}
	return c.Hash
}

// requireReady fails unless every node is Ready.
func (h *harness) requireReady(nodes ...string) {
	h.t.Helper()
	for _, n := range nodes {
		if st := h.status(n); st.Phase != v1.PhaseReady {
			h.t.Fatalf("%s: phase %s (%s), want Ready", n, st.Phase, st.Message)
		}
	}
}
