package controllers

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// withEvents gives the controller a recorder on the fake clock.
func withEvents(h **harness, rec **events.Recorder) func(*Options) {
	return func(o *Options) {
		*rec = events.New(events.Options{Now: func() time.Time { return (*h).clock.Now() }})
		o.Events = *rec
	}
}

// requireEventsInOrder fails unless node's events contain want (each
// "Reason" or "Reason:part of the message") in this order, others
// allowed between.
func requireEventsInOrder(t *testing.T, rec *events.Recorder, node string, want ...string) {
	t.Helper()
	evs := rec.List(events.Filter{Nodes: []string{node}})
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s %s: %s", e.Type, e.Reason, e.Message))
	}
	i := 0
	for _, e := range evs {
		if i == len(want) {
			break
		}
		reason, part, _ := strings.Cut(want[i], ":")
		if e.Reason == reason && strings.Contains(e.Message, part) {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("%s: events do not show %q (from %q on) in order:\n%s", node, want, want[i], strings.Join(got, "\n"))
	}
}

func TestEventsOfACameraCreatedThenCrashed(t *testing.T) {
	var h *harness
	var rec *events.Recorder
	spec := testSwarm("gfa1")
	h = newHarness(t, spec, "r1", withEvents(&h, &rec))
	h.start()
	h.probed()
	h.requireReady("gfa1")
	// (The fake's camera client connects as the container starts: the
	// CameraConnected event's place is not checked against Started.)
	requireEventsInOrder(t, rec, "gfa1", "Pulled:sdss5/flicamera:v1", "VolumeCreated:data", "Created:flicamera-gfa1",
		"Started", "Ready")
	requireEventsInOrder(t, rec, "gfa1", "CameraConnected")

	h.eng("gfa1").Kill(spec.ContainerNameFor("gfa1"), 137)
	h.settle()
	h.probed()
	h.requireReady("gfa1")
	requireEventsInOrder(t, rec, "gfa1", "Ready", "CameraLost", "Crashed:exit code 137", "Started", "Ready")
	for _, e := range rec.List(events.Filter{Nodes: []string{"gfa1"}}) {
		if e.Reason == v1.ReasonCrashed && e.Type != v1.EventWarning {
			t.Fatalf("a crash is a %s event", e.Type)
		}
	}
}

func TestEventsOfAHaltedRollout(t *testing.T) {
	var h *harness
	var rec *events.Recorder
	spec := testSwarm(threeNodes...)
	spec.ReadyTimeout = v1.Seconds(10)
	h = newHarness(t, spec, "r1", withEvents(&h, &rec))
	h.start()
	h.probed()
	h.requireReady(threeNodes...)
	h.ctl.SetSpec(edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"BAD": "1"} }), "r2")
	h.advance(30 * time.Second)
	node := halted(t, h, "r2")
	requireEventsInOrder(t, rec, node, "Ready", "RolloutStarted:spec changed", "Created", "Started",
		"RolloutHalted:revision r2 halted: camera exited with code 2", "RolledBack", "Ready")
	requireEventsInOrder(t, rec, node, "RolloutStarted", "Crashed:exit code 2")
}

func TestEventsOfAnEngineDownAndBack(t *testing.T) {
	var h *harness
	var rec *events.Recorder
	h = newHarness(t, testSwarm("gfa1"), "r1", withEvents(&h, &rec))
	h.start()
	h.probed()
	e := h.eng("gfa1")
	// The engine stops answering: its container list (the one read of a
	// node whose stream is up) fails, then its ping.
	e.Fail("Ping", fmt.Errorf("connect: connection refused"))
	e.Fail("ListContainers", fmt.Errorf("connect: connection refused"))
	h.advance(5 * time.Minute)
	e.Fail("Ping", nil)
	e.Fail("ListContainers", nil)
	h.advance(5 * time.Minute)
	requireEventsInOrder(t, rec, "gfa1", "Ready", "EngineDown:connection refused", "EngineUp:back after")
	if n := len(rec.List(events.Filter{Nodes: []string{"gfa1"}})); n > 20 {
		t.Fatalf("%d events for one engine down and back: resyncs must not repeat them", n)
	}
}

// Relay only, a node's status is its camera connection alone: nothing
// observes its engine.
func TestRelayOnlyStatusIsTheCameraConnection(t *testing.T) {
	s := NewStore(testSwarm("gfa1", "gfa2"), "r1")
	s.SetRelayOnly()
	if st, _ := s.NodeStatus("gfa1"); st.Phase != v1.PhaseNotObserved {
		t.Fatalf("before the camera client reports: %s", st.Phase)
	}
	s.SetCamera("gfa1", true, "")
	s.SetCamera("gfa2", false, "dial tcp: connection refused")
	if st, _ := s.NodeStatus("gfa1"); st.Phase != v1.PhaseReady || st.ObservedAt.IsZero() {
		t.Fatalf("a connected camera: %s (%s), observed %v", st.Phase, st.Message, st.ObservedAt)
	}
	if st, _ := s.NodeStatus("gfa2"); st.Phase != v1.PhaseCameraNotConnected || !strings.Contains(st.Message, "connection refused") {
		t.Fatalf("a camera not connected: %s (%s)", st.Phase, st.Message)
	}
	s.SetEnabled("gfa2", false)
	if st, _ := s.NodeStatus("gfa2"); st.Phase != v1.PhaseDisabled {
		t.Fatalf("a disabled node: %s", st.Phase)
	}
}
