package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/controllers"
	"github.com/sdss/fliswarm/pkg/events"
	"github.com/sdss/fliswarm/pkg/metrics"
)

// fakeDaemon is a daemon's status backed by a real status store.
type fakeDaemon struct {
	store  *controllers.Store
	events *events.Recorder
	mu     sync.Mutex
	info   v1.DaemonInfo
}

func newFakeDaemon() *fakeDaemon {
	spec := &v1.Swarm{
		Image: "sdss/flicamera:latest", Registry: "10.213.0.1:5000",
		EnabledNodes: []string{"gfa1", "gfa2"},
		Nodes: map[string]v1.Node{
			"gfa1": {Host: "10.213.0.11", Port: 19995, DockerClient: "tcp://10.213.0.11:2375"},
			"gfa2": {Host: "10.213.0.12", Port: 19995, DockerClient: "tcp://10.213.0.12:2375"},
		},
	}
	spec.SetDefaults()
	d := &fakeDaemon{store: controllers.NewStore(spec, "rev1"), events: events.New(events.Options{})}
	d.store.RecordEventsTo(d.events)
	d.info = v1.DaemonInfo{Running: true, Pid: 42, Version: "test", Revision: "rev1", StartedAt: time.Now()}
	return d
}

func (d *fakeDaemon) Status() v1.DaemonStatus {
	d.mu.Lock()
	info := d.info
	d.mu.Unlock()
	return v1.DaemonStatus{Daemon: info, Nodes: d.store.Status()}
}

// observe records a node as a reconcile would: running (with the camera
// connected) or its container exited.
func (d *fakeDaemon) observe(node string, running bool, restarts int) {
	now := time.Now()
	st := v1.NodeStatus{Name: node, Host: "h", Reachable: true, DockerAlive: true, ObservedAt: now, Restarts: restarts,
		Image: v1.ImageStatus{Ref: "10.213.0.1:5000/sdss/flicamera:latest", Present: true},
		Container: &v1.ContainerStatus{ID: "0123456789abcdef" + node, State: "running", Image: "10.213.0.1:5000/sdss/flicamera:latest",
			StartedAt: now.Add(-time.Hour)}}
	st.SetCondition(v1.ConditionContainerRunning, running, "", "", now)
	if !running {
		st.Container.State = "exited"
		st.LastActions = []string{"start-container flicamera-" + node + " (the camera stopped)"}
	}
	d.store.SetObserved(st)
	d.store.SetCamera(node, running, "")
}

func newTestServer(t *testing.T, d *fakeDaemon) (*Server, *httptest.Server) {
	t.Helper()
	m := metrics.New(func() []v1.NodeStatus { return d.Status().Nodes })
	s := New(Options{Status: d.Status, Subscribe: d.store.Subscribe, Metrics: m.Handler(), MinInterval: 50 * time.Millisecond, Events: d.events})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return s, srv
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestHealthzAndReadyz(t *testing.T) {
	d := newFakeDaemon()
	_, srv := newTestServer(t, d)
	if code, body, _ := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body, _ := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "gfa1, gfa2") {
		t.Errorf("/readyz before any observation = %d %q; want 503 naming gfa1, gfa2", code, body)
	}
	d.observe("gfa1", true, 0)
	code, body, _ = get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "gfa2") || strings.Contains(body, "gfa1") {
		t.Errorf("/readyz with gfa1 observed = %d %q; want 503 naming gfa2 only", code, body)
	}
	d.observe("gfa2", false, 0) // observed, even if not ready
	if code, body, _ = get(t, srv.URL+"/readyz"); code != 200 {
		t.Errorf("/readyz with every node observed = %d %q; want 200", code, body)
	}
	d.mu.Lock()
	d.info.Revision = ""
	d.mu.Unlock()
	if code, body, _ = get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "configuration") {
		t.Errorf("/readyz without a configuration = %d %q", code, body)
	}
}

func TestStatusIsTheControlSocketJSON(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 2)
	_, srv := newTestServer(t, d)
	code, body, h := get(t, srv.URL+"/status")
	if code != 200 || h.Get("Content-Type") != "application/json" {
		t.Fatalf("/status = %d %s", code, h.Get("Content-Type"))
	}
	var got v1.DaemonStatus
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(d.Status())
	again, _ := json.Marshal(got)
	if string(want) != string(again) {
		t.Errorf("/status differs from the daemon's status:\n got %s\nwant %s", again, want)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 2)
	d.observe("gfa2", false, 5)
	_, srv := newTestServer(t, d)
	code, body, _ := get(t, srv.URL+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, line := range []string{
		`fliswarm_node_ready{node="gfa1"} 1`,
		`fliswarm_node_ready{node="gfa2"} 0`,
		`fliswarm_node_restarts_total{node="gfa2"} 5`,
		`fliswarm_node_container_running{node="gfa2"} 0`,
		`fliswarm_node_camera_connected{node="gfa1"} 1`,
		`fliswarm_node_phase{node="gfa2",phase="ContainerNotRunning"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

func TestPage(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 0)
	d.observe("gfa2", false, 0)
	_, srv := newTestServer(t, d)
	code, body, h := get(t, srv.URL+"/")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("/ = %d %s", code, h.Get("Content-Type"))
	}
	for _, s := range []string{`<template id="card-template">`, `data-node=""`, `data-phase=""`, `data-field="events"`,
		// Rendered on the server too: every node's card, with its state.
		`<article class="card" data-node="gfa1" data-phase="Ready" data-state="running" data-health="ok" data-ready="true">`,
		`<article class="card" data-node="gfa2" data-phase="ContainerNotRunning" data-state="recovering" data-health="warn" data-ready="false">`,
		`1 of 2 ready`,
		`data-slot="exposure"`, `/static/app.js`, `/static/style.css`, `name="viewport"`} {
		if !strings.Contains(body, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		if code, body, _ := get(t, srv.URL+p); code != 200 || len(body) < 100 {
			t.Errorf("%s = %d (%d bytes)", p, code, len(body))
		}
	}
	if code, _, _ := get(t, srv.URL+"/nothing"); code != 404 {
		t.Errorf("/nothing = %d, want 404", code)
	}
	js := func() string { _, b, _ := get(t, srv.URL+"/static/app.js"); return b }()
	if !strings.Contains(js, `new EventSource("/stream")`) || strings.Contains(js, "fetch(") {
		t.Errorf("the page should follow /stream and never poll")
	}
}

// sseReader reads the "status" events of a stream.
type sseReader struct {
	t      *testing.T
	sc     *bufio.Scanner
	cancel func()
}

func openEvents(t *testing.T, url string) *sseReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("/stream Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &sseReader{t: t, sc: sc, cancel: cancel}
}

// next returns the next snapshot (the test's deadline bounds the wait).
func (r *sseReader) next() Snapshot {
	r.t.Helper()
	event := ""
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "status":
			var s Snapshot
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s); err != nil {
				r.t.Fatal(err)
			}
			return s
		}
	}
	r.t.Fatalf("event stream ended: %v", r.sc.Err())
	return Snapshot{}
}

// until reads snapshots until cond holds for one.
func (r *sseReader) until(what string, cond func(Snapshot) bool) Snapshot {
	r.t.Helper()
	// At the deadline the stream is closed, which ends the wait in next.
	deadline := time.AfterFunc(10*time.Second, func() { r.t.Errorf("no snapshot with %s within 10 s", what); r.cancel() })
	defer deadline.Stop()
	for {
		s := r.next()
		if cond(s) {
			return s
		}
	}
}

func phaseOf(s Snapshot, node string) string {
	for _, n := range s.Nodes {
		if n.Name == node {
			return n.Phase
		}
	}
	return ""
}

func TestEventsStreamFollowsTheStore(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 0)
	d.observe("gfa2", true, 0)
	_, srv := newTestServer(t, d)
	r := openEvents(t, srv.URL)
	first := r.next()
	if phaseOf(first, "gfa1") != v1.PhaseReady || phaseOf(first, "gfa2") != v1.PhaseReady {
		t.Fatalf("first snapshot: %s %s", phaseOf(first, "gfa1"), phaseOf(first, "gfa2"))
	}
	// The camera crashes, then comes back.
	d.observe("gfa1", false, 0)
	down := r.until("gfa1 not ready", func(s Snapshot) bool { return phaseOf(s, "gfa1") != v1.PhaseReady })
	d.observe("gfa1", true, 1)
	back := r.until("gfa1 ready again", func(s Snapshot) bool { return phaseOf(s, "gfa1") == v1.PhaseReady })
	if back.Seq <= down.Seq {
		t.Errorf("seq %d after %d", back.Seq, down.Seq)
	}
	// The card shows the node's events, newest first, as recorded.
	var got []string
	for _, ev := range back.Events["gfa1"] {
		got = append(got, ev.Reason)
	}
	if want := []string{v1.ReasonCameraConnected, v1.ReasonCameraLost, v1.ReasonCameraConnected}; !slices.Equal(got, want) {
		t.Errorf("gfa1's events on its card: %v, want %v", got, want)
	}
	if len(back.Events["gfa2"]) != 1 {
		t.Errorf("gfa2 events: %+v; want only its camera's connection", back.Events["gfa2"])
	}
}

// A stream of changes that do not change a phase is pushed at most once
// per MinInterval.
func TestEventsAreDebounced(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 0)
	d.observe("gfa2", true, 0)
	s := New(Options{Status: d.Status, Subscribe: d.store.Subscribe, MinInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	r := openEvents(t, srv.URL)
	for range 50 {
		d.store.SetPull("gfa2", &v1.PullProgress{Image: "x", Current: 1, Total: 2})
	}
	// A phase change goes through at once, carrying the latest state; the
	// pull updates before it were not pushed one by one.
	d.observe("gfa1", false, 0)
	got := r.until("gfa2's pull", func(s Snapshot) bool {
		for _, n := range s.Nodes {
			if n.Name == "gfa2" && n.Pull != nil {
				return true
			}
		}
		return false
	})
	if phaseOf(got, "gfa1") == v1.PhaseReady {
		t.Errorf("a snapshot with gfa2's pull but gfa1 still ready was pushed (seq %d): updates are not debounced", got.Seq)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	d := newFakeDaemon()
	s := New(Options{Status: d.Status, Subscribe: d.store.Subscribe})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l) }()
	r := openEvents(t, "http://"+l.Addr().String()) // an open stream must not hold the shutdown
	r.next()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of the end of its context")
	}
}

func TestEventsAreServedAsJSON(t *testing.T) {
	d := newFakeDaemon()
	d.events.Event("", v1.EventNormal, v1.ReasonConfigAccepted, "revision rev1")
	d.events.Event("gfa1", v1.EventWarning, v1.ReasonCrashed, "exit code 2")
	d.events.Event("gfa2", v1.EventNormal, v1.ReasonStarted, "started")
	_, srv := newTestServer(t, d)
	read := func(query string) []v1.Event {
		t.Helper()
		code, body, h := get(t, srv.URL+"/events"+query)
		if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
			t.Fatalf("/events%s: %d %s", query, code, body)
		}
		var evs []v1.Event
		if err := json.Unmarshal([]byte(body), &evs); err != nil {
			t.Fatalf("/events%s: %v\n%s", query, err, body)
		}
		return evs
	}
	if evs := read(""); len(evs) != 3 || evs[0].Reason != v1.ReasonConfigAccepted {
		t.Fatalf("every event: %+v", evs)
	}
	if evs := read("?node=gfa1"); len(evs) != 1 || evs[0].Reason != v1.ReasonCrashed || evs[0].Type != v1.EventWarning {
		t.Fatalf("gfa1's events: %+v", evs)
	}
	if evs := read("?node=gfa1&node=gfa2&since=1h"); len(evs) != 2 {
		t.Fatalf("two nodes' events: %+v", evs)
	}
	if evs := read("?since=2999-01-01T00:00:00Z"); len(evs) != 0 {
		t.Fatalf("events from the future: %+v", evs)
	}
	if code, body, _ := get(t, srv.URL+"/events?since=yesterday"); code != http.StatusBadRequest || !strings.Contains(body, "neither a time") {
		t.Fatalf("a bad since: %d %s", code, body)
	}
}
