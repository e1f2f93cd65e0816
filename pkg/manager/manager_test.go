package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/config"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// loadConfig is a daemon whose only node's engine is a closed port: the
// reconciler keeps failing, which is enough to observe the node.
func loadConfig(t *testing.T, http string) *config.Loaded {
	t.Helper()
	doc := fmt.Sprintf(`
actor: {name: fliswarm, host: 127.0.0.1, port: %d, tron_host: null, log_dir: false}
registry: null
image: sdss5/flicamera:latest
ping_timeout: 0.1
http: %s
enabled_nodes: [n1]
nodes:
  n1: {host: 127.0.0.1, port: %d, docker-client: "tcp://127.0.0.1:%d", category: gfa}
`, freePort(t), http, freePort(t), freePort(t))
	l, err := config.Parse([]byte(doc), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// start runs the daemon and returns once it is ready; done receives
// Start's result.
func start(t *testing.T, ctx context.Context, opts Options) (m *Manager, done chan error) {
	t.Helper()
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Start: %v", err)
	}
	return m, done
}

func TestDaemonServesHTTP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, done := start(t, ctx, Options{Config: loadConfig(t, "127.0.0.1:0"), RunDir: t.TempDir(), Logger: logr.Discard()})
	addr := m.Status().Daemon.HTTPAddr
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("HTTPAddr = %q after Start", addr)
	}
	// Bound before Start returned: answers at once.
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	code, body := get("/status")
	var st v1.DaemonStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Nodes) != 1 || st.Nodes[0].Name != "n1" {
		t.Errorf("/status = %d %v %s", code, err, body)
	}
	// The node is observed (as unreachable engine) soon: ready.
	deadline := time.Now().Add(20 * time.Second)
	for code, body = get("/readyz"); code != 200 && time.Now().Before(deadline); code, body = get("/readyz") {
		time.Sleep(50 * time.Millisecond)
	}
	if code != 200 {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `fliswarm_node_enabled{node="n1"} 1`) ||
		!strings.Contains(body, `fliswarm_reconcile_duration_seconds_count{node="n1",result="error"}`) {
		t.Errorf("/metrics = %d, lacking n1's series or its failed reconciles:\n%s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start after the daemon was stopped: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not stop")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("%s still accepts after the daemon stopped", addr)
	}
}

func TestDaemonHTTPPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m, err := New(Options{Config: loadConfig(t, l.Addr().String()), RunDir: t.TempDir(), Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	m.opts.Ready = func() { ready = true }
	err = m.Start(context.Background()) // returns at once: nothing to wait for
	if ready {
		t.Errorf("Ready called although a port could not be bound")
	}
	if err == nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("Start with the http port in use = %v, want an error naming http", err)
	}
}

func TestDaemonHTTPOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	m, done := start(t, ctx, Options{Config: loadConfig(t, "null"), RunDir: t.TempDir(), Logger: logr.Discard()})
	if a := m.Status().Daemon.HTTPAddr; a != "" {
		t.Errorf("HTTPAddr = %q with http: null", a)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start after the daemon was stopped: %v", err)
	}
}
