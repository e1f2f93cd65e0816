package actor

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// nubsLines returns the startNubs lines among a hub's lines.
func nubsLines(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasSuffix(l, " hub startNubs fliswarm") || strings.Contains(l, " hub startNubs ") {
			out = append(out, l)
		}
	}
	return out
}

// TestStartNubsOnEveryConnection: the client asks the hub to connect back
// on its first connection and again on the connection made after the hub
// dropped it.
func TestStartNubsOnEveryConnection(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0")
	addr := hub.addr()
	tc := NewTronClient(addr, "fliswarm.fliswarm", logr.Discard())
	tc.StartNubs("fliswarm")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tc.Run(ctx) }()

	waitUntil(t, "startNubs accepted", func() bool { return !tc.State().NubsAccepted.IsZero() })
	if got := hub.received(); !slices.Equal(got, []string{"fliswarm.fliswarm 1 hub startNubs fliswarm"}) {
		t.Fatalf("first connection: hub got %q", got)
	}
	first := tc.State().NubsAccepted

	hub.close()
	waitUntil(t, "tron disconnected", func() bool { return !tc.Connected() })
	hub2 := startFakeHub(t, addr)
	waitUntil(t, "startNubs on the new connection", func() bool { return len(nubsLines(hub2.received())) == 1 })
	waitUntil(t, "startNubs accepted again", func() bool { return tc.State().NubsAccepted.After(first) })
	if st := tc.State(); !st.Connected || st.Addr != addr || st.Since.IsZero() {
		t.Errorf("state after reconnecting: %+v", st)
	}
}

// TestStartNubsRefusedIsAskedAgain: a hub that answers f is asked again on
// the same connection; the client stays connected.
func TestStartNubsRefusedIsAskedAgain(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0")
	tc := NewTronClient(hub.addr(), "failer.failer", logr.Discard())
	tc.StartNubs("failer") // the fake hub fails every command holding "fail"
	tc.nubsRetry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tc.Run(ctx) }()
	waitUntil(t, "three refused startNubs", func() bool { return len(nubsLines(hub.received())) >= 3 })
	if st := tc.State(); !st.Connected || !st.NubsAccepted.IsZero() {
		t.Errorf("state: %+v", st)
	}
}

// TestHubStatusRecognisesTron: status's hub= says whether the hub
// connection is up and whether (and when) a user from the hub's host
// connected; a user from elsewhere is not tron.
func TestHubStatusRecognisesTron(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.2:0") // the hub's host is 127.0.0.2
	h := newHarness(t, harnessConfig{tronAddr: hub.addr()})
	waitUntil(t, "startNubs", func() bool { return len(nubsLines(hub.received())) == 1 })
	c := h.dial() // from 127.0.0.1: not tron
	hubKW := func() []string {
		t.Helper()
		res := send(t, c, "status")
		for _, r := range res.replies {
			if v, ok := kwValues(r, "hub"); ok {
				return v
			}
		}
		t.Fatalf("no hub= in status: %q", res.lines())
		return nil
	}
	if v := hubKW(); !slices.Equal(v, []string{"T", hub.addr(), "F", "NA"}) {
		t.Errorf("before tron connected: hub=%q", v)
	}

	// tron connects back from the hub's host.
	before := time.Now().UTC().Truncate(time.Second)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	tronConn, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tronConn, make([]byte, 10)); err != nil { // the greeting
		t.Fatal(err)
	}
	v := hubKW()
	if v[0] != "T" || v[2] != "T" {
		t.Errorf("with tron connected: hub=%q", v)
	}
	when, err := time.Parse(time.RFC3339, v[3])
	if err != nil || when.Before(before) || when.After(time.Now().Add(time.Second)) {
		t.Errorf("tron's last connection %q (%v), want about %v", v[3], err, before)
	}
	st := h.actor.HubStatus(context.Background())
	if st == nil || !st.Connected || !st.TronConnected || st.NubsAccepted.IsZero() {
		t.Errorf("HubStatus: %+v", st)
	}

	tronConn.Close()
	waitUntil(t, "tron's connection gone", func() bool {
		st := h.actor.HubStatus(context.Background())
		return !st.TronConnected && !st.TronLastConnected.IsZero()
	})
	if v := hubKW(); v[2] != "F" || v[3] == "NA" {
		t.Errorf("after tron left: hub=%q", v)
	}
}

// countingMetrics counts the commands the actor ran, by verb.
type countingMetrics struct {
	mu sync.Mutex
	n  map[string]int
}

func (m *countingMetrics) CommandDone(verb, _ string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[verb]++
}
func (m *countingMetrics) LinesRelayed(int) {}
func (m *countingMetrics) count(verb string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[verb]
}

// TestStatusBroadcastAtStart: the timed status runs once at start (long
// before its interval), and not at all when it is disabled.
func TestStatusBroadcastAtStart(t *testing.T) {
	for _, tc := range []struct {
		interval v1.Duration
		want     int
	}{{v1.Seconds(3600), 1}, {v1.Seconds(-1), 0}} {
		m := &countingMetrics{n: map[string]int{}}
		h := newHarness(t, harnessConfig{
			opts: func(o *Options) { o.Metrics = m },
			spec: func(s *v1.Swarm) { s.StatusInterval = tc.interval },
		})
		if tc.want > 0 {
			waitUntil(t, "status at start", func() bool { return m.count("status") == tc.want })
		}
		send(t, h.dial(), "ping") // the status at start, if any, ran first
		if got := m.count("status"); got != tc.want {
			t.Errorf("interval %v: %d status runs, want %d", tc.interval.D(), got, tc.want)
		}
	}
}

func TestGetSchemaAndKeyword(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "get_schema")
	if res.final.Code != opscore.Done {
		t.Fatalf("get_schema: %q", res.lines())
	}
	v, ok := kwValues(res.final, "schema")
	if !ok || len(v) != 1 {
		t.Fatalf("get_schema's final line: %q", res.final.Line)
	}
	// The parser passes \" through: undo it as a CLU client's json does.
	var schema struct {
		Type       string                    `json:"type"`
		Properties map[string]map[string]any `json:"properties"`
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(v[0], `\"`, `"`)), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v: %s", err, v[0])
	}
	if schema.Type != "object" || len(schema.Properties) != len(Keywords) {
		t.Errorf("schema: type %q, %d properties, want %d", schema.Type, len(schema.Properties), len(Keywords))
	}
	for name, want := range map[string]any{
		"version": "string", "node": "array", "hub": "array", "yourUserID": "integer",
	} {
		if got := schema.Properties[name]["type"]; got != want {
			t.Errorf("%s: type %v, want %v", name, got, want)
		}
	}
	node := schema.Properties["node"]
	if node["minItems"] != 5.0 || node["maxItems"] != 5.0 || len(node["items"].([]any)) != 5 {
		t.Errorf("node's schema: %v", node)
	}

	res = send(t, c, "keyword version")
	want := []string{
		// As CLU: the width is the longest line's before its quotes go.
		`i text="version = {                                 "`,
		`i text="  description: The version of fliswarm.,    "`,
		`i text="  type: string                              "`,
		`i text="}                                           "`,
	}
	got := res.lines()
	if res.final.Code != opscore.Done || !slices.Equal(got[1:len(got)-1], want) {
		t.Errorf("keyword version:\n%s", strings.Join(got, "\n"))
	}
	res = send(t, c, "keyword nope")
	if res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, `error=fliswarm,"Keyword 'nope' is not part of the data model."`) {
		t.Errorf("keyword nope: %q", res.final.Line)
	}
	if res := send(t, c, "keyword"); res.final.Code != opscore.Failed {
		t.Errorf("keyword without a name: %q", res.final.Line)
	}
}

// fastPings makes the camera clients ping every 50 ms and give a camera
// 300 ms to answer (the real 2 s and 4 s, scaled down).
func fastPings(o *device.Options) {
	o.PingInterval = 50 * time.Millisecond
	o.PingTimeout = 300 * time.Millisecond
}

// TestLongCommandHasNoLimit: with command_timeout unset, an exposure many
// ping intervals long, and longer than a command_timeout that is set,
// ends normally; with that command_timeout set, the same exposure fails.
func TestLongCommandHasNoLimit(t *testing.T) {
	h := newHarness(t, harnessConfig{devices: fastPings}) // exposures run at 0.05 of their time
	if d := commandTimeout(h.actor.currentSpec()); d != 0 {
		t.Fatalf("default command timeout %v, want none", d)
	}
	c := h.dial()
	start := time.Now()
	res := send(t, c, "talk -n gfa1 expose 30") // 1.5 s
	if took := time.Since(start); res.final.Code != opscore.Done || took < 1400*time.Millisecond {
		t.Fatalf("a 1.5 s exposure without a limit ended %q after %v: %q", res.final.Line, took, res.lines())
	}
	if !slices.ContainsFunc(res.lines(), func(l string) bool { return strings.HasPrefix(l, "i filename_bundle=") }) {
		t.Errorf("no file written: %q", res.lines())
	}

	// The same exposure with command_timeout 0.5 s (the old default of
	// 300 s, scaled) fails.
	spec, _ := h.rec.Spec()
	next := *spec
	next.CommandTimeout = v1.Seconds(0.5)
	h.rec.setSpec(&next)
	res = send(t, c, "talk -n gfa1 expose 30")
	if res.final.Code != opscore.Failed || !slices.ContainsFunc(res.lines(), func(l string) bool {
		return strings.HasPrefix(l, "w error=gfa1,") && strings.Contains(l, "timed out")
	}) {
		t.Errorf("a 1.5 s exposure with command_timeout 0.5 s: %q", res.lines())
	}
}

// TestCommandToFrozenCameraFails: a camera that stops answering (its
// liveness pings too) in the middle of a command ends the command with a
// failure naming it, within a few ping intervals.
func TestCommandToFrozenCameraFails(t *testing.T) {
	var fr *freezer
	h := newHarness(t, harnessConfig{
		devices: fastPings,
		spec: func(s *v1.Swarm) {
			n := s.Nodes["gfa1"]
			fr = startFreezer(t, cameraAddr(n))
			n.Port = fr.ln.Addr().(*net.TCPAddr).Port
			s.Nodes["gfa1"] = n
		},
	})
	c := h.dial()
	done := make(chan result, 1)
	go func() { done <- send(t, c, "talk -n gfa1 expose 200") }() // 10 s
	waitUntil(t, "exposure sent", func() bool { return h.actor.device("gfa1").InFlight() > 0 })
	fr.freeze()
	start := time.Now()
	select {
	case res := <-done:
		if res.final.Code != opscore.Failed || !slices.ContainsFunc(res.lines(), func(l string) bool {
			return strings.HasPrefix(l, "w error=gfa1,") && strings.Contains(l, "disconnected")
		}) {
			t.Errorf("talk to a frozen camera: %q", res.lines())
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("the frozen camera's command ended after %v", took)
		}
	case <-time.After(waitFor):
		t.Fatal("the command to a frozen camera did not end")
	}
}

// TestDisableEndsCommandInFlight: disabling a node ends the commands its
// camera is running, with a failure.
func TestDisableEndsCommandInFlight(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	done := make(chan result, 1)
	go func() { done <- send(t, c, "talk -n gfa2 sim-hang") }()
	waitUntil(t, "sim-hang sent", func() bool { return h.actor.device("gfa2").InFlight() > 0 })
	if res := send(t, h.dial(), "disable gfa2"); res.final.Code != opscore.Done {
		t.Fatalf("disable: %q", res.lines())
	}
	select {
	case res := <-done:
		if res.final.Code != opscore.Failed {
			t.Errorf("talk to a disabled camera ended %q", res.final.Line)
		}
	case <-time.After(waitFor):
		t.Fatal("disabling the node did not end its command")
	}
}
