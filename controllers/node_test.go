package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// oneNode runs a converged gfa1.
func oneNode(t *testing.T) (*harness, string) {
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1")
	return h, spec.ContainerNameFor("gfa1")
}

func TestDieEventRestartsTheCameraAtOnce(t *testing.T) {
	h, name := oneNode(t)
	e := h.eng("gfa1")
	starts, now := e.Calls("StartContainer"), h.clock.Now()
	e.Kill(name, 137)
	h.settle() // no time passes: only the die event can act
	if c := h.camera("gfa1"); c.State != "running" || e.Calls("StartContainer") != starts+1 {
		t.Fatalf("after a die event: camera %s, %d starts (was %d)", c.State, e.Calls("StartContainer"), starts)
	}
	if !h.clock.Now().Equal(now) {
		t.Fatal("the clock moved")
	}
	h.probed()
	h.requireReady("gfa1")
	if st := h.status("gfa1"); st.Restarts != 1 {
		t.Fatalf("restarts %d, want 1", st.Restarts)
	}
}

func TestPullFailureIsRetriedWithBackoff(t *testing.T) {
	spec := testSwarm("gfa1")
	spec.ResyncInterval = v1.Seconds(3600) // only the backoff retries
	h := newHarness(t, spec, "r1")
	e := h.eng("gfa1")
	e.Fail("PullImage", errors.New("registry 10.0.0.1:5000: connection refused"))
	h.start()
	st := h.status("gfa1")
	if st.Phase != v1.PhaseImagePullFailed || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("phase %s, last error %q; want ImagePullFailed", st.Phase, st.LastError)
	}
	// Retries back off, doubling from 1 s.
	mark := h.w.markDown()
	h.advance(time.Minute)
	var at []time.Duration
	for _, o := range h.w.opsSince(mark) {
		if o.Op == "pull" {
			at = append(at, o.At.Sub(epoch))
		}
	}
	if len(at) < 4 || len(at) > 6 || at[0] > 2*time.Second {
		t.Fatalf("pulls at %v in the first minute, want 4 to 6 from 1 or 2 s on", at)
	}
	for i := 2; i < len(at); i++ {
		if gap, prev := at[i]-at[i-1], at[i-1]-at[i-2]; gap != 2*prev {
			t.Fatalf("pulls at %v: the retries do not double", at)
		}
	}
	e.Fail("PullImage", nil)
	h.advance(32 * time.Second)
	h.requireReady("gfa1")
	if h.ctl.queue.NumRequeues("gfa1") != 0 {
		t.Fatal("a success did not forget the failures")
	}
}

func TestCameraConnectionSurvivesAConcurrentReconcile(t *testing.T) {
	h, _ := oneNode(t)
	h.ctl.SetCamera("gfa1", false, "") // the camera client lost it
	if st := h.status("gfa1"); st.Phase != v1.PhaseCameraNotConnected {
		t.Fatalf("phase %s before the actor connects, want CameraNotConnected", st.Phase)
	}
	e := h.eng("gfa1")
	calls := e.Calls("ListContainers")
	release := e.Hold("ListContainers")
	h.ctl.queue.Add("gfa1")
	h.waitFor("a reconcile to observe", func() bool { return e.Calls("ListContainers") > calls })
	h.ctl.SetCamera("gfa1", true, "") // while the reconcile runs
	release()
	h.settle()
	st := h.status("gfa1")
	if c := st.Condition(v1.ConditionDeviceConnected); !st.DeviceConnected || c == nil || !c.Status || st.Phase != v1.PhaseReady {
		t.Fatalf("camera connection lost to a reconcile: connected %v, condition %+v, phase %s", st.DeviceConnected, c, st.Phase)
	}
}

func TestReadinessNamesTheReason(t *testing.T) {
	h, name := oneNode(t)
	spec, _ := h.ctl.Spec()
	host := spec.Nodes["gfa1"].Host
	e := h.eng("gfa1")
	reconcile := func() v1.NodeStatus {
		h.ctl.queue.Add("gfa1")
		h.settle()
		return h.status("gfa1")
	}

	// A node that is down, or whose engine is, does not answer the
	// container list either (the one read of a node whose event stream
	// is up): the pass then pings.
	h.w.set(func() { h.w.hostDown[host] = true })
	e.Fail("ListContainers", errors.New("dial tcp: i/o timeout"))
	if st := reconcile(); st.Phase != v1.PhaseUnreachable || !strings.Contains(st.Message, "not pinging back") {
		t.Fatalf("no ping: phase %s (%s), want Unreachable", st.Phase, st.Message)
	}
	h.w.set(func() { delete(h.w.hostDown, host) })
	e.Fail("Ping", errors.New("connect: connection refused"))
	e.Fail("ListContainers", errors.New("connect: connection refused"))
	if st := reconcile(); st.Phase != v1.PhaseEngineDown || !strings.Contains(st.Message, "connection refused") {
		t.Fatalf("engine down: phase %s (%s), want EngineDown", st.Phase, st.Message)
	}
	e.Fail("Ping", nil)
	e.Fail("ListContainers", nil)
	_ = reconcile()
	h.requireReady("gfa1")

	// A paused camera is seen as Paused, then unpaused.
	release := e.Hold("UnpauseContainer")
	e.Pause(name)
	h.waitFor("the unpause", func() bool { return e.Calls("UnpauseContainer") > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st := h.ctl.ObserveAll(ctx, []string{"gfa1"})[0]; st.Phase != v1.PhasePaused {
		t.Fatalf("paused container: phase %s (%s), want Paused", st.Phase, st.Message)
	}
	release()
	h.settle()
	st := h.status("gfa1")
	if h.camera("gfa1").State != "running" || st.Phase != v1.PhaseReady ||
		!slices.ContainsFunc(st.LastActions, func(a string) bool { return strings.HasPrefix(a, string(ActionUnpauseContainer)) }) {
		t.Fatalf("after unpause: camera %s, phase %s, last actions %v", h.camera("gfa1").State, st.Phase, st.LastActions)
	}
}

func TestUnreachableNodeAnswersAtOnce(t *testing.T) {
	spec := testSwarm("gfa1", "gfa2")
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1", "gfa2")
	h.w.set(func() { h.w.hostDown[spec.Nodes["gfa1"].Host] = true })
	refused := errors.New("dial tcp: connect: connection refused")
	h.eng("gfa1").Fail("Ping", refused)
	h.eng("gfa2").Fail("Ping", refused)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res := h.ctl.ConvergeResults(ctx, []string{"gfa1", "gfa2"}, v1.ConvergeOptions{})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	want := map[string][2]string{
		"gfa1": {"not pinging back", v1.PhaseUnreachable},
		"gfa2": {"Docker client on node " + spec.Nodes["gfa2"].Host + " is not connected", v1.PhaseEngineDown},
	}
	for _, r := range res {
		if w := want[r.Node]; !strings.Contains(r.Error, w[0]) || r.Status.Phase != w[1] {
			t.Errorf("%s: error %q, phase %s; want %q, %s", r.Node, r.Error, r.Status.Phase, w[0], w[1])
		}
	}
}

func TestNodesNotEnabledAreRefusedAndLeftAlone(t *testing.T) {
	spec := testSwarm("gfa1", "gfa2")
	spec.EnabledNodes = []string{"gfa1"}
	h := newHarness(t, spec, "r1")
	if err := h.ctl.CheckNodes([]string{"gfa1"}); err != nil {
		t.Fatal(err)
	}
	err := h.ctl.CheckNodes([]string{"gfa2", "nope"})
	if err == nil || !strings.Contains(err.Error(), "gfa2 is not enabled") || !strings.Contains(err.Error(), "nope is not configured") {
		t.Fatalf("CheckNodes = %v", err)
	}

	// Without a daemon (the one-shot path) and with one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, r := range h.ctl.ReconcileOnce(ctx, []string{"gfa2", "nope"}, v1.ConvergeOptions{}) {
		if !strings.Contains(r.Error, "not enabled") && !strings.Contains(r.Error, "not configured") {
			t.Errorf("one-shot %s: error %q", r.Node, r.Error)
		}
	}
	h2 := newHarness(t, spec, "r1")
	h2.start()
	h2.probed()
	h2.requireReady("gfa1")
	if r := h2.ctl.ConvergeResults(ctx, []string{"gfa2"}, v1.ConvergeOptions{Force: true})[0]; !strings.Contains(r.Error, "gfa2: node is not enabled") {
		t.Fatalf("daemon: error %q", r.Error)
	}
	h2.advance(time.Minute) // resyncs
	for _, hh := range []*harness{h, h2} {
		if n := hh.eng("gfa2").Calls("CreateContainer"); n != 0 || hh.eng("gfa2").Calls("StartContainer") != 0 {
			t.Fatalf("a camera was created on a node that is not enabled (%d creates)", n)
		}
	}
}

// The start event of a camera the reconciler started itself does not make
// it reconcile the node again; a start nobody expected does, and so does
// the start after an expectation has lapsed.
func TestOwnStartEventIsNotReconciledAgain(t *testing.T) {
	h, name := oneNode(t)
	e := h.eng("gfa1")
	lists := e.Calls("ListContainers")
	e.Kill(name, 137)
	h.settle()
	// One reconcile, which reads the node once.
	if n := e.Calls("ListContainers") - lists; n != 1 {
		t.Fatalf("%d container listings for a die and the restart that followed, want 1 (one reconcile)", n)
	}
	startEvent := func() {
		e.mu.Lock()
		ev := e.event(e.find(name), "start")
		e.mu.Unlock()
		e.emit(ev)
		h.settle()
		// The event source may still be handing the event to the queue
		// when the controller first looks idle: give it a moment of real
		// time to show one reconcile, then settle again (a second one
		// would still be counted).
		deadline := time.Now().Add(2 * time.Second)
		for e.Calls("ListContainers") == lists && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		h.settle()
	}
	lists = e.Calls("ListContainers")
	startEvent() // an operator's `docker start`
	if n := e.Calls("ListContainers") - lists; n != 1 {
		t.Fatalf("%d reconciles for a start nobody expected, want 1", n)
	}
	h.ctl.rec.expect.Expect("gfa1", name, "start")
	h.advance(expectationTTL)
	lists = e.Calls("ListContainers")
	startEvent()
	if n := e.Calls("ListContainers") - lists; n != 1 {
		t.Fatalf("%d reconciles for a start expected too long ago, want 1", n)
	}
}

// A start the reconciler made before the node's event stream was open is
// never seen; its expectation must not take the place of the next start
// nobody expected (an operator's `docker start` after the first crash).
func TestStartBeforeTheStreamOpenedLeavesNoExpectation(t *testing.T) {
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1")
	e := h.eng("gfa1")
	release := e.Hold("Events")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.ctl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.waitFor("the camera started with no event stream open", func() bool { return e.Calls("StartContainer") == 1 })
	release()
	h.waitFor("the event stream", func() bool { return e.Streams() > 0 })
	h.settle()
	h.probed()
	h.requireReady("gfa1")

	name := spec.ContainerNameFor("gfa1")
	lists := e.Calls("ListContainers")
	e.mu.Lock()
	ev := e.event(e.find(name), "start")
	e.mu.Unlock()
	e.emit(ev)
	h.waitFor("a reconcile for the start nobody expected", func() bool { return e.Calls("ListContainers") > lists })
}
