package cli_test

import (
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/cli"
)

// fakeDocker answers like a node's dockerd for the calls `logs` makes:
// ping, inspect of the camera container (running since startedAt), and
// its multiplexed log, written since the epoch of lines.
type fakeDocker struct {
	*httptest.Server
	name  string
	lines []string // "RFC3339 text", oldest first
}

func newFakeDocker(t *testing.T, name string, lines ...string) *fakeDocker {
	f := &fakeDocker{name: name, lines: lines}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

var apiPrefix = regexp.MustCompile(`^/v1\.\d+`)

func (f *fakeDocker) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.41")
	p := apiPrefix.ReplaceAllString(r.URL.Path, "")
	if v := apiPrefix.FindString(r.URL.Path); v != "" && v != "/v1.41" {
		// dockerd 20.10 refuses a client that did not negotiate.
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"message":"client version ` + v[2:] + ` is too new. Maximum supported API version is 1.41"}`))
		return
	}
	switch p {
	case "/_ping":
		_, _ = w.Write([]byte("OK"))
	case "/containers/" + f.name + "/json":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"Id": "0123456789ab" + strings.Repeat("0", 52), "Name": "/" + f.name, "Created": "2026-12-03T05:00:00Z",
			"State":  map[string]any{"Status": "running", "Running": true, "StartedAt": "2026-12-03T05:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"},
			"Config": map[string]any{"Image": "flicamera"}, "HostConfig": map[string]any{},
		})
	case "/containers/" + f.name + "-previous/json":
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"No such container"}`))
	case "/containers/0123456789ab" + strings.Repeat("0", 52) + "/logs":
		lines := f.lines
		if n := r.URL.Query().Get("tail"); n != "" {
			var k int
			fmt.Sscan(n, &k)
			lines = lines[max(0, len(lines)-k):]
		}
		for _, l := range lines {
			h := make([]byte, 8)
			h[0] = 1
			be.BigEndian.PutUint32(h[4:], uint32(len(l)+1))
			_, _ = w.Write(append(h, l+"\n"...))
		}
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"page not found"}`))
	}
}

func logsConfig(t *testing.T, engines map[string]string, enabled string) string {
	var nodes strings.Builder
	port := 1000
	for n, addr := range engines {
		port++
		fmt.Fprintf(&nodes, "  %s: {host: 127.0.0.1, port: %d, docker-client: %q, category: gfa}\n", n, port, addr)
	}
	return writeFile(t, fmt.Sprintf(`
actor: {name: fliswarm, host: 127.0.0.1, port: 1, tron_host: null, log_dir: false}
registry: null
image: sdss5/flicamera:latest
http: null
enabled_nodes: [%s]
nodes:
%s`, enabled, nodes.String()))
}

func TestLogsWithoutDaemonReadsTheEngine(t *testing.T) {
	g1 := newFakeDocker(t, "flicamera-gfa1", "2026-12-03T05:00:01Z one", "2026-12-03T05:00:02Z two", "2026-12-03T05:00:03Z three")
	cfg := logsConfig(t, map[string]string{"gfa1": "tcp://" + g1.Listener.Addr().String()}, "gfa1")
	code, out, errOut := run(t, "-c", cfg, "logs", "gfa1", "--tail", "2")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "two\nthree\n" {
		t.Errorf("stdout %q", out)
	}
	if !strings.Contains(errOut, "==> gfa1: flicamera-gfa1 (0123456789ab), running since 2026-12-03T05:00:00Z") {
		t.Errorf("stderr %q does not say which container", errOut)
	}
}

func TestLogsSeveralNodesArePrefixed(t *testing.T) {
	g1 := newFakeDocker(t, "flicamera-gfa1", "2026-12-03T05:00:01Z from one")
	g2 := newFakeDocker(t, "flicamera-gfa2", "2026-12-03T05:00:01Z from two")
	cfg := logsConfig(t, map[string]string{
		"gfa1": "tcp://" + g1.Listener.Addr().String(), "gfa2": "tcp://" + g2.Listener.Addr().String(),
	}, "gfa1, gfa2")
	code, out, errOut := run(t, "-c", cfg, "logs", "--category", "gfa", "-t")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"gfa1 | 2026-12-03T05:00:01Z from one\n", "gfa2 | 2026-12-03T05:00:01Z from two\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q lacks %q", out, want)
		}
	}
}

func TestLogsFailsClearlyAndQuickly(t *testing.T) {
	g1 := newFakeDocker(t, "flicamera-gfa1", "2026-12-03T05:00:01Z one")
	dead := fmt.Sprintf("tcp://127.0.0.1:%d", closedPort(t))
	cfg := logsConfig(t, map[string]string{
		"gfa1": "tcp://" + g1.Listener.Addr().String(), "gfa2": "tcp://" + g1.Listener.Addr().String(), "gfa3": dead,
	}, "gfa1, gfa3")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"logs", "gfa9"}, cli.ExitUsage, `unknown node "gfa9"`},
		{[]string{"logs"}, cli.ExitUsage, "name a node or give --category"},
		{[]string{"logs", "gfa2"}, cli.ExitFailure, "gfa2 is not enabled"},
		{[]string{"logs", "gfa3"}, cli.ExitFailure, "gfa3: inspect container flicamera-gfa3: "},
		{[]string{"logs", "gfa1", "--previous"}, cli.ExitFailure, "gfa1: no previous instance: flicamera-gfa1 has not been restarted and no flicamera-gfa1-previous is kept"},
		{[]string{"logs", "gfa1", "--since", "yesterday"}, cli.ExitUsage, `--since "yesterday"`},
		{[]string{"logs", "--category", "fvc"}, cli.ExitUsage, `no enabled node in category "fvc"`},
	} {
		start := time.Now()
		code, _, errOut := run(t, append([]string{"-c", cfg}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v took %s", tc.args, d)
		}
	}
}
