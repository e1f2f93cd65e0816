package controllers

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// callsOf is a copy of e's call counts, for a failure message.
func callsOf(e *fakeEngine) map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.calls)
}

func callsSince(e *fakeEngine, before map[string]int) map[string]int {
	out := map[string]int{}
	for m, n := range callsOf(e) {
		if d := n - before[m]; d != 0 {
			out[m] = d
		}
	}
	return out
}

// endStreams ends every event stream of e as an engine going away does,
// and holds the next opening until the returned func is called.
func endStreams(h *harness, e *fakeEngine) (release func()) {
	release = e.Hold("Events")
	e.mu.Lock()
	subs := slices.Clone(e.subs)
	e.mu.Unlock()
	for _, s := range subs {
		e.end(s, fmt.Errorf("%w: unexpected EOF", engine.ErrStreamEnded))
	}
	h.waitFor("the stream to be down", func() bool { return !h.ctl.events.Feeds().Up(e.node) })
	return release
}

// While a node's event stream is up, its resync comes every 4 intervals
// (2 minutes) and makes one request: the container list. While it is
// down, every interval, and each reads everything and pings.
func TestQuietHealthyNodeResyncIsOneRequest(t *testing.T) {
	h, _ := oneNode(t)
	e := h.eng("gfa1")
	every := testSwarm().ResyncInterval.D()
	h.advance(4 * every) // whatever the start left
	before, reqs, pings := callsOf(e), e.Requests(), h.w.pings()
	h.advance(3 * every) // ticks the healthy node skips
	if n := e.Requests() - reqs; n != 0 {
		t.Fatalf("%d requests at the 3 ticks after a resync of a quiet healthy node, want 0 (the resync stretched): %v", n, callsSince(e, before))
	}
	for i := range 3 {
		before, reqs = callsOf(e), e.Requests()
		if i == 0 {
			h.advance(every)
		} else {
			h.advance(4 * every)
		}
		if n := e.Requests() - reqs; n != 1 || callsSince(e, before)["ListStates"] != 1 {
			t.Fatalf("resync %d of a quiet healthy node: %d requests %v, want 1 (one container list)", i+1, n, callsSince(e, before))
		}
	}
	if n := h.w.pings() - pings; n != 0 {
		t.Fatalf("%d ICMP pings of a quiet healthy node", n)
	}
	h.requireReady("gfa1")

	// The stream ends: the node is read in full (pings included) at once
	// and at every interval while it stays down.
	release := endStreams(h, e)
	h.settle()
	for i := range 2 {
		before = callsOf(e)
		h.advance(every)
		got := callsSince(e, before)
		if got["Ping"] != 1 || got["InspectContainer"] != 1 || got["InspectImage"] != 1 || got["InspectVolume"] != 1 || got["ListStates"] != 1 {
			t.Fatalf("resync %d with the stream down: %v, want a ping and every read", i+1, got)
		}
	}
	release()
	h.waitFor("the stream to be up again", func() bool { return h.ctl.events.Feeds().Up("gfa1") })
	h.settle()
	h.requireReady("gfa1")
}

// A change that no event announced is still caught, by the stretched
// resync.
func TestChangeTheEventsMissedIsCaughtByTheResync(t *testing.T) {
	h, name := oneNode(t)
	e := h.eng("gfa1")
	every := testSwarm().ResyncInterval.D()
	h.advance(HealthyResyncFactor * every)
	h.advance(every / 2) // between two ticks
	// The camera exits and nobody hears of it.
	e.mu.Lock()
	c := e.find(name)
	c.State, c.Running, c.ExitCode, c.FinishedAt = "exited", false, 1, h.w.stamp()
	e.mu.Unlock()
	starts := e.Calls("StartContainer")
	h.advance(HealthyResyncFactor * every)
	if e.Calls("StartContainer") != starts+1 || h.camera("gfa1").State != "running" {
		t.Fatalf("a stop no event announced: %d starts after a stretched resync", e.Calls("StartContainer")-starts)
	}
	// It is removed and nobody hears of it.
	e.mu.Lock()
	delete(e.containers, e.find(name).ID)
	e.mu.Unlock()
	creates := e.Calls("CreateContainer")
	h.advance(HealthyResyncFactor * every)
	if e.Calls("CreateContainer") != creates+1 || h.camera("gfa1").State != "running" {
		t.Fatalf("a removal no event announced: %d creates after a stretched resync", e.Calls("CreateContainer")-creates)
	}
}

// An event drops what was kept of its kind: the next pass reads it again.
func TestEventsDropWhatWasKept(t *testing.T) {
	h, name := oneNode(t)
	e := h.eng("gfa1")
	h.advance(HealthyResyncFactor * testSwarm().ResyncInterval.D())
	spec, _ := h.ctl.Spec()
	read := func(ev engine.Event) map[string]int {
		before := callsOf(e)
		e.emit(ev)
		h.settle()
		// The event is not one that reconciles: an operator's look does
		// (it pings, and reads what the event dropped).
		h.ctl.queue.Add("gfa1")
		h.settle()
		return callsSince(e, before)
	}
	if got := read(engine.Event{Type: "image", Action: "tag", Name: spec.ImageRef()}); got["InspectImage"] != 1 || got["InspectContainer"] != 0 || got["InspectVolume"] != 0 {
		t.Fatalf("after an image event: %v, want the image read again and nothing else", got)
	}
	if got := read(engine.Event{Type: "volume", Action: "create", Name: "data"}); got["InspectVolume"] != 1 || got["InspectImage"] != 0 || got["InspectContainer"] != 0 {
		t.Fatalf("after a volume event: %v, want the volume read again and nothing else", got)
	}
	e.mu.Lock()
	ev := e.event(e.find(name), "update")
	e.mu.Unlock()
	if got := read(ev); got["InspectContainer"] != 1 || got["InspectImage"] != 0 || got["InspectVolume"] != 0 {
		t.Fatalf("after a container event: %v, want the container read again and nothing else", got)
	}
	if got := read(engine.Event{Type: "network", Action: "connect"}); got["InspectContainer"] != 0 || got["InspectImage"] != 0 || got["InspectVolume"] != 0 {
		t.Fatalf("after an event about nothing read: %v, want only the list", got)
	}
}

// A node that stops answering its list (its stream still up, as a cut
// cable leaves it until keepalives notice) is pinged and found down.
func TestFailedListPings(t *testing.T) {
	h, _ := oneNode(t)
	e := h.eng("gfa1")
	spec, _ := h.ctl.Spec()
	h.advance(HealthyResyncFactor * spec.ResyncInterval.D())
	h.w.set(func() { h.w.hostDown[spec.Nodes["gfa1"].Host] = true })
	e.Fail("ListContainers", errors.New("dial tcp: i/o timeout"))
	e.Fail("Ping", errors.New("dial tcp: i/o timeout"))
	pings := h.w.pings()
	h.advance(HealthyResyncFactor * spec.ResyncInterval.D())
	if h.w.pings() == pings {
		t.Fatal("a node whose list failed was not pinged")
	}
	if st := h.status("gfa1"); st.Reachable || st.DockerAlive {
		t.Fatalf("a node down reads reachable %v, engine alive %v", st.Reachable, st.DockerAlive)
	}
}

// A crash loop reads the node once per attempt: at most 8 requests per
// start (the start, its logs, and the lists and inspects of the passes
// that see it stop and wait out the backoff), no pings. (It makes 6: 7 is
// the limit here, so that a resync during the backoff, 2 lists more per
// 5-minute wait, fails it.)
func TestCrashLoopReadsOncePerAttempt(t *testing.T) {
	h, _ := crashHarness(t)
	e := h.eng("gfa1")
	h.advance(time.Minute) // into the loop
	before, reqs, starts, pings := callsOf(e), e.Requests(), e.Calls("StartContainer"), h.w.pings()
	h.advance(20 * time.Minute)
	n, got := e.Requests()-reqs, e.Calls("StartContainer")-starts
	if got < 3 {
		t.Fatalf("%d starts in 20 minutes of a crash loop", got)
	}
	per := float64(n) / float64(got)
	t.Logf("%d starts, %d requests (%.1f per start): %v", got, n, per, callsSince(e, before))
	if per > 7 {
		t.Fatalf("%.1f engine requests per start (%v), want at most 7", per, callsSince(e, before))
	}
	if h.w.pings() != pings || callsSince(e, before)["Ping"] != 0 {
		t.Fatalf("a crash loop on a node whose stream is up pinged it: %v", callsSince(e, before))
	}
}

// A camera connection lost has the node pinged within lostCameraLook, its stream up or
// not: a node cut off keeps its stream open, without a word, until
// keepalives notice.
func TestLostCameraConnectionPings(t *testing.T) {
	h, _ := oneNode(t)
	e := h.eng("gfa1")
	spec, _ := h.ctl.Spec()
	h.advance(HealthyResyncFactor * spec.ResyncInterval.D())
	pings, enginePings := h.w.pings(), e.Calls("Ping")
	h.w.set(func() { h.w.hostDown[spec.Nodes["gfa1"].Host] = true })
	h.ctl.SetCamera("gfa1", false, "read: connection reset")
	h.settle()
	if h.w.pings() != pings {
		t.Fatal("pinged before lostCameraLook")
	}
	h.advance(lostCameraLook)
	if h.w.pings() != pings+1 || e.Calls("Ping") != enginePings+1 {
		t.Fatalf("camera connection lost: %d pings, %d engine pings; want one of each", h.w.pings()-pings, e.Calls("Ping")-enginePings)
	}
	if st := h.status("gfa1"); st.Reachable {
		t.Fatalf("a node that does not answer ping reads reachable (phase %s)", st.Phase)
	}
}

// A resync_interval under MinStretchedResync is kept as configured, the
// stream up or not.
func TestShortResyncIntervalIsNotStretched(t *testing.T) {
	spec := testSwarm("gfa1")
	spec.ResyncInterval = v1.Seconds(5)
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1")
	e := h.eng("gfa1")
	h.advance(10 * time.Second)
	lists := e.Calls("ListStates")
	h.advance(20 * time.Second)
	if n := e.Calls("ListStates") - lists; n != 4 {
		t.Fatalf("%d lists in 20 s with resync_interval 5 s, want 4", n)
	}
}
