package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/camsim"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// waitFor is how long a test waits for something that should happen
// quickly; generous because the test machine is small and noisy.
const waitFor = 20 * time.Second

// fakeReconciler records what the actor asks and returns canned status.
type fakeReconciler struct {
	mu         sync.Mutex
	spec       *v1.Swarm
	override   map[string]bool
	status     map[string]v1.NodeStatus
	devices    map[string]bool
	converges  []convergeCall
	onConverge func(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error
}

type convergeCall struct {
	nodes []string
	opts  v1.ConvergeOptions
}

func newFakeReconciler(spec *v1.Swarm) *fakeReconciler {
	return &fakeReconciler{
		spec:     spec,
		override: map[string]bool{},
		status:   map[string]v1.NodeStatus{},
		devices:  map[string]bool{},
	}
}

func (f *fakeReconciler) Spec() (*v1.Swarm, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spec, "rev1"
}

func (f *fakeReconciler) setSpec(s *v1.Swarm) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spec = s
}

func (f *fakeReconciler) Enabled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, n := range f.spec.EnabledNodes {
		if on, ok := f.override[n]; !ok || on {
			out = append(out, n)
		}
	}
	for _, n := range f.spec.NodeNames() {
		if f.override[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (f *fakeReconciler) SetEnabled(node string, on bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.spec.Nodes[node]; !ok {
		return false
	}
	f.override[node] = on
	return true
}

func (f *fakeReconciler) Status() []v1.NodeStatus {
	enabled := f.Enabled()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []v1.NodeStatus
	for _, n := range f.spec.NodeNames() {
		st, ok := f.status[n]
		if !ok {
			continue
		}
		st.Enabled = slices.Contains(enabled, n)
		st.DeviceConnected = f.devices[n]
		out = append(out, st)
	}
	return out
}

func (f *fakeReconciler) Converge(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error {
	f.mu.Lock()
	f.converges = append(f.converges, convergeCall{slices.Clone(nodes), opts})
	hook := f.onConverge
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, nodes, opts)
	}
	out := map[string]error{}
	for _, n := range nodes {
		out[n] = nil
	}
	return out
}

func (f *fakeReconciler) SetCamera(node string, connected bool, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.devices[node] = connected
}

func (f *fakeReconciler) deviceConnected(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices[node]
}

func (f *fakeReconciler) convergeCalls() []convergeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.converges)
}

// camera is one simulated camera actor on 127.0.0.1.
type camera struct {
	name string
	addr string
	cfg  camsim.Config

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// startCamera starts a camsim server for node on addr ("127.0.0.1:0" for
// a fresh port).
func startCamera(t *testing.T, node, addr string, cfg camsim.Config) *camera {
	t.Helper()
	cfg.Name = node
	c := &camera{name: node, cfg: cfg}
	c.listen(t, addr)
	t.Cleanup(c.stop)
	return c
}

func (c *camera) listen(t *testing.T, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(waitFor)
	for {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the old listener may linger a moment
	}
	if err != nil {
		t.Fatalf("camera %s: listen on %s: %v", c.name, addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := camsim.New(c.cfg)
	go func() { done <- srv.Serve(ctx, ln) }()
	c.mu.Lock()
	c.addr, c.cancel, c.done = ln.Addr().String(), cancel, done
	c.mu.Unlock()
}

// stop stops the camera and waits for it; it may be called again.
func (c *camera) stop() {
	c.mu.Lock()
	cancel, done := c.cancel, c.done
	c.cancel, c.done = nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// restart stops the camera and serves it again on the same address.
func (c *camera) restart(t *testing.T) {
	c.stop()
	c.listen(t, c.addr)
}

func (c *camera) port(t *testing.T) int {
	t.Helper()
	_, p, err := net.SplitHostPort(c.addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

// harness is an actor with three simulated cameras and a fake reconciler.
type harness struct {
	t       *testing.T
	ctx     context.Context
	rec     *fakeReconciler
	actor   *Actor
	cams    map[string]*camera
	dataDir string
	addr    string
}

type harnessConfig struct {
	opts      func(*Options)
	spec      func(*v1.Swarm)
	camConfig camsim.Config
}

var nodeNames = []string{"gfa1", "gfa2", "fvc"}

func testSpec(ports map[string]int) *v1.Swarm {
	s := &v1.Swarm{
		Actor:        v1.Actor{Name: "fliswarm", Host: "127.0.0.1", Port: 0},
		Registry:     "sdss-hub:5000",
		Image:        "sdss5/flicamera:latest",
		EnabledNodes: slices.Clone(nodeNames),
		Nodes:        map[string]v1.Node{},
		Volumes: map[string]v1.Volume{
			"data": {Driver: "local", Opts: map[string]string{"type": "nfs", "device": ":/data"}},
		},
		StatusInterval: -1,
		RebootCommand:  "sudo reboot",
	}
	for i, n := range nodeNames {
		cat := "gfa"
		if n == "fvc" {
			cat = "fvc"
		}
		s.Nodes[n] = v1.Node{
			Host:         "127.0.0.1",
			Port:         ports[n],
			DockerClient: fmt.Sprintf("tcp://10.0.0.%d:2375", i+1),
			Category:     cat,
			User:         "sdss",
		}
	}
	s.SetDefaults()
	return s
}

// cannedStatus: gfa1 healthy, gfa2 without its volume, fvc unreachable.
func cannedStatus(spec *v1.Swarm) map[string]v1.NodeStatus {
	now := time.Now()
	st := map[string]v1.NodeStatus{}
	for _, n := range nodeNames {
		node := spec.Nodes[n]
		st[n] = v1.NodeStatus{
			Name: n, Host: node.Host, DockerHost: node.DockerClient,
			Reachable: true, DockerAlive: true, ObservedAt: now,
			Container: &v1.ContainerStatus{ID: "0123456789abcdef" + n, State: "running", Count: 1},
			Volumes:   []v1.VolumeStatus{{Name: "data", Exists: true, Device: ":/data"}},
		}
	}
	g2 := st["gfa2"]
	g2.Volumes = []v1.VolumeStatus{{Name: "data"}}
	st["gfa2"] = g2
	st["fvc"] = v1.NodeStatus{Name: "fvc", Host: "127.0.0.1", DockerHost: spec.Nodes["fvc"].DockerClient, ObservedAt: now}
	return st
}

func newHarness(t *testing.T, hc harnessConfig) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, ctx: ctx, cams: map[string]*camera{}, dataDir: t.TempDir()}
	cc := hc.camConfig
	cc.DataDir = h.dataDir
	if cc.ExposureScale == 0 {
		cc.ExposureScale = 0.05
	}
	if cc.Width == 0 {
		cc.Width, cc.Height = 64, 64
	}
	ports := map[string]int{}
	for _, n := range nodeNames {
		h.cams[n] = startCamera(t, n, "127.0.0.1:0", cc)
		ports[n] = h.cams[n].port(t)
	}
	spec := testSpec(ports)
	if hc.spec != nil {
		hc.spec(spec)
	}
	h.rec = newFakeReconciler(spec)
	h.rec.status = cannedStatus(spec)

	opts := Options{
		Reconciler:        h.rec,
		Version:           "test-1.0",
		Addr:              "127.0.0.1:0",
		DeviceWait:        waitFor,
		RebootStatusDelay: -1,
		PowerCycleDelay:   -1,
	}
	if hc.opts != nil {
		hc.opts(&opts)
	}
	h.actor = New(opts)
	if err := h.actor.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	h.addr = h.actor.Addr().String()
	t.Cleanup(func() {
		cancel()
		done := make(chan struct{})
		go func() { h.actor.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Errorf("the actor did not stop")
		}
	})
	for _, n := range spec.EnabledNodes {
		h.waitDevice(n, true)
	}
	return h
}

// waitDevice waits until the reconciler was told node's camera is
// (dis)connected.
func (h *harness) waitDevice(node string, connected bool) {
	h.t.Helper()
	waitUntil(h.t, fmt.Sprintf("camera %s connected=%v", node, connected), func() bool {
		c := h.actor.device(node)
		return h.rec.deviceConnected(node) == connected && (c != nil && c.Connected()) == connected
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial connects an opscore client to the actor.
func (h *harness) dial(opts ...opscore.ClientOption) *opscore.Client {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, waitFor)
	defer cancel()
	c, err := opscore.Dial(ctx, h.addr, opts...)
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	h.t.Cleanup(func() { c.Close() })
	return c
}

// result is every reply of one command.
type result struct {
	replies []opscore.Reply
	final   opscore.Reply
}

// send runs one command and returns all its replies.
func send(t *testing.T, c *opscore.Client, body string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	var mu sync.Mutex
	var res result
	final, err := c.Send(ctx, body, func(r opscore.Reply) {
		mu.Lock()
		res.replies = append(res.replies, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	res.final = final
	return res
}

// lines returns the replies as "<code> <keywords>", the header dropped.
func (r result) lines() []string {
	out := make([]string, len(r.replies))
	for i, rep := range r.replies {
		out[i] = stripHeader(rep.Line)
	}
	return out
}

func stripHeader(line string) string {
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 3 {
		return line
	}
	return parts[2]
}

// has reports whether some reply line (without header) satisfies f.
func (r result) find(f func(opscore.Reply) bool) []opscore.Reply {
	var out []opscore.Reply
	for _, rep := range r.replies {
		if f(rep) {
			out = append(out, rep)
		}
	}
	return out
}

func (r result) hasLine(line string) bool { return slices.Contains(r.lines(), line) }

func kwValues(r opscore.Reply, name string) ([]string, bool) {
	k, ok := r.Get(name)
	if !ok {
		return nil, false
	}
	out := make([]string, len(k.Values))
	for i, v := range k.Values {
		out[i] = v.(string)
	}
	return out, true
}

var errTest = errors.New("test failure")

// proxy forwards TCP connections to a target; kill cuts every connection
// at once, like a camera computer that vanishes mid-command.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.kill)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) kill() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
