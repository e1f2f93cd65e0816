package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// statuses are two nodes: gfa1 ready, gfa2 in a crash loop with a halted
// rollout.
func statuses() []v1.NodeStatus {
	now := time.Now()
	gfa1 := v1.NodeStatus{Name: "gfa1", Enabled: true, Reachable: true, DockerAlive: true, DeviceConnected: true,
		Container: &v1.ContainerStatus{ID: "abc", State: "running"}, ObservedAt: now, Restarts: 3}
	gfa1.SetCondition(v1.ConditionContainerRunning, true, "Running", "", now)
	gfa1.SetPhase(true)
	gfa2 := v1.NodeStatus{Name: "gfa2", Enabled: true, Reachable: true, DockerAlive: true,
		Container: &v1.ContainerStatus{ID: "def", State: "exited"}, ObservedAt: now, Restarts: 7,
		CrashLoop: &v1.CrashLoopStatus{Restarts: 4, LastExitCode: 1, Backoff: v1.Seconds(8), NextAttempt: now.Add(8 * time.Second)},
		Rollout:   &v1.RolloutStatus{Revision: "r2", State: v1.RolloutHeld, HaltedNode: "fvc"}}
	gfa2.SetCondition(v1.ConditionContainerRunning, false, "Exited", "", now)
	gfa2.SetPhase(false)
	return []v1.NodeStatus{gfa1, gfa2}
}

func TestNodeSeries(t *testing.T) {
	m := New(statuses)
	want := `
# HELP fliswarm_node_ready 1 when the node is ready: it pings, its engine answers, its camera runs and is connected.
# TYPE fliswarm_node_ready gauge
fliswarm_node_ready{node="gfa1"} 1
fliswarm_node_ready{node="gfa2"} 0
# HELP fliswarm_node_restarts_total Camera restarts fliswarm itself made on the node since the daemon started.
# TYPE fliswarm_node_restarts_total counter
fliswarm_node_restarts_total{node="gfa1"} 3
fliswarm_node_restarts_total{node="gfa2"} 7
# HELP fliswarm_node_crashloop_backoff 1 while the node's camera keeps stopping and its restarts are backed off.
# TYPE fliswarm_node_crashloop_backoff gauge
fliswarm_node_crashloop_backoff{node="gfa1"} 0
fliswarm_node_crashloop_backoff{node="gfa2"} 1
# HELP fliswarm_node_crashloop_backoff_seconds The wait before the next start of a camera in a crash loop (0 when none).
# TYPE fliswarm_node_crashloop_backoff_seconds gauge
fliswarm_node_crashloop_backoff_seconds{node="gfa1"} 0
fliswarm_node_crashloop_backoff_seconds{node="gfa2"} 8
# HELP fliswarm_node_container_running 1 when the node's camera container runs with the current spec.
# TYPE fliswarm_node_container_running gauge
fliswarm_node_container_running{node="gfa1"} 1
fliswarm_node_container_running{node="gfa2"} 0
# HELP fliswarm_node_camera_connected 1 when fliswarm is connected to the node's camera actor.
# TYPE fliswarm_node_camera_connected gauge
fliswarm_node_camera_connected{node="gfa1"} 1
fliswarm_node_camera_connected{node="gfa2"} 0
# HELP fliswarm_node_reachable 1 when the node answers ping.
# TYPE fliswarm_node_reachable gauge
fliswarm_node_reachable{node="gfa1"} 1
fliswarm_node_reachable{node="gfa2"} 1
# HELP fliswarm_node_engine_alive 1 when the node's Docker Engine answers.
# TYPE fliswarm_node_engine_alive gauge
fliswarm_node_engine_alive{node="gfa1"} 1
fliswarm_node_engine_alive{node="gfa2"} 1
`
	names := []string{"fliswarm_node_ready", "fliswarm_node_restarts_total", "fliswarm_node_crashloop_backoff",
		"fliswarm_node_crashloop_backoff_seconds", "fliswarm_node_container_running", "fliswarm_node_camera_connected",
		"fliswarm_node_reachable", "fliswarm_node_engine_alive"}
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	body := scrape(t, m)
	for _, line := range []string{
		`fliswarm_node_phase{node="gfa1",phase="Ready"} 1`,
		`fliswarm_node_phase{node="gfa2",phase="CrashLoopBackOff"} 1`,
		`fliswarm_node_phase{node="gfa2",phase="Ready"} 0`,
		`fliswarm_node_rollout_state{node="gfa2",state="held"} 1`,
		`fliswarm_node_rollout_state{node="gfa1",state="held"} 0`,
		// The Go runtime and the process.
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestRecorders(t *testing.T) {
	m := New(func() []v1.NodeStatus { return nil })
	m.ObserveReconcile("gfa1", 30*time.Millisecond, nil)
	m.ObserveReconcile("gfa1", 2*time.Second, errors.New("engine down"))
	m.CountAction("start-container", "ok")
	m.CountAction("start-container", "ok")
	m.CountAction("pull-image", "error")
	m.CommandDone("talk", "done")
	m.CommandDone("talk", "failed")
	m.CommandDone("status", "done")
	m.LinesRelayed(1)
	m.LinesRelayed(1)
	m.UserDropped()
	m.UsersChanged(4)
	m.UsersChanged(3)
	m.CountEvent("gfa1", "Warning", "Crashed")
	m.CountEvent("gfa1", "Warning", "Crashed")
	m.CountEvent("", "Normal", "ConfigAccepted")
	body := scrape(t, m)
	for _, line := range []string{
		`fliswarm_reconcile_duration_seconds_bucket{node="gfa1",result="ok",le="0.05"} 1`,
		`fliswarm_reconcile_duration_seconds_count{node="gfa1",result="error"} 1`,
		`fliswarm_reconcile_duration_seconds_bucket{node="gfa1",result="error",le="1"} 0`,
		`fliswarm_actions_total{kind="start-container",outcome="ok"} 2`,
		`fliswarm_actions_total{kind="pull-image",outcome="error"} 1`,
		`fliswarm_actor_commands_total{outcome="done",verb="talk"} 1`,
		`fliswarm_actor_commands_total{outcome="failed",verb="talk"} 1`,
		`fliswarm_actor_relayed_lines_total 2`,
		`fliswarm_actor_dropped_users_total 1`,
		`fliswarm_actor_users 3`,
		`fliswarm_events_total{node="gfa1",reason="Crashed",type="Warning"} 2`,
		`fliswarm_events_total{node="",reason="ConfigAccepted",type="Normal"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if n, err := testutil.GatherAndLint(m.Registry()); err != nil || len(n) > 0 {
		t.Errorf("lint: %v %v", n, err)
	}
}

func TestNilRecords(t *testing.T) {
	var m *Metrics
	m.ObserveReconcile("gfa1", time.Second, nil)
	m.CountAction("x", "ok")
	m.CommandDone("talk", "done")
	m.LinesRelayed(1)
	m.UserDropped()
	m.UsersChanged(1)
	m.CountEvent("gfa1", "Normal", "Started")
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	return string(b)
}
