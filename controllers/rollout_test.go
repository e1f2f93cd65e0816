package controllers

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

var threeNodes = []string{"fvc", "gfa1", "gfa2"}

// rolloutHarness runs three converged nodes under spec r1 with
// max_unavailable 1, and marks the world so that what follows is
// counted from there.
func rolloutHarness(t *testing.T, tweak func(*v1.Swarm)) (*harness, *v1.Swarm) {
	spec := testSwarm(threeNodes...)
	spec.ReadyTimeout = v1.Seconds(10)
	if tweak != nil {
		tweak(spec)
	}
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady(threeNodes...)
	return h, spec
}

// edited is a copy of spec with f applied.
func edited(spec *v1.Swarm, f func(*v1.Swarm)) *v1.Swarm {
	s := *spec
	s.Env = maps.Clone(spec.Env)
	f(&s)
	return &s
}

// firstOp is the index of the first op of kind in ops, len(ops) if none.
func firstOp(ops []fakeOp, kind string) int {
	for i, o := range ops {
		if o.Op == kind {
			return i
		}
	}
	return len(ops)
}

func TestRolloutPullsEverywhereFirstThenOneAtATime(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	v2 := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v2" })
	h.w.set(func() { h.w.pullBarrier = h.w.pullsStarted + 3; h.w.maxPulls = 0 })
	mark := h.w.markDown()

	h.ctl.SetSpec(v2, "r2")
	h.advance(10 * time.Second)
	for _, n := range threeNodes {
		if got, want := h.camera(n).Hash, hashOf(t, v2, n); got != want {
			t.Fatalf("%s runs spec %s, want %s (rollout not complete)", n, got, want)
		}
	}
	h.requireReady(threeNodes...)

	ops := h.w.opsSince(mark)
	firstRemove := firstOp(ops, "remove")
	pulls := 0
	for _, o := range ops[:firstRemove] {
		if o.Op == "pull" {
			pulls++
		}
	}
	if pulls != 3 || h.w.maxPulls != 3 {
		t.Fatalf("%d pulls before the first camera was removed, %d at once; want 3 and 3 (parallel pre-pull)\n%v",
			pulls, h.w.maxPulls, ops)
	}
	if h.w.maxDown > 1 {
		t.Fatalf("%d cameras down at once with max_unavailable 1\n%v", h.w.maxDown, ops)
	}
}

// haltedBy checks a rollout halted on node: that node went back to the
// old spec and says halted with reason, the others are held and never
// stopped.
func haltedBy(t *testing.T, h *harness, old *v1.Swarm, rev, node, reason string, ops []fakeOp) {
	t.Helper()
	for _, n := range threeNodes {
		st := h.status(n)
		if got, want := h.camera(n).Hash, hashOf(t, old, n); got != want || h.camera(n).State != "running" {
			t.Fatalf("%s: camera %s with spec %s, want running the previous spec %s", n, h.camera(n).State, got, want)
		}
		if st.Rollout == nil || st.Rollout.HaltedNode != node || st.Rollout.Revision != rev {
			t.Fatalf("%s: rollout status %+v, want halted on %s", n, st.Rollout, node)
		}
		if n == node {
			if st.Rollout.State != v1.RolloutHalted || st.Phase != v1.PhaseRolloutHalted || !strings.Contains(st.Rollout.Message, reason) {
				t.Fatalf("%s: phase %s, rollout %+v; want halted because %q", n, st.Phase, st.Rollout, reason)
			}
			continue
		}
		if st.Rollout.State != v1.RolloutHeld {
			t.Fatalf("%s: rollout state %q, want held", n, st.Rollout.State)
		}
		for _, o := range ops {
			if o.Node == n && (o.Op == "remove" || o.Op == "create" || o.Op == "stop" || o.Op == "died") {
				t.Fatalf("%s was touched by a halted rollout: %v", n, o)
			}
		}
	}
	if h.w.maxDown != 1 {
		t.Fatalf("%d cameras down at once, want exactly 1\n%v", h.w.maxDown, ops)
	}
	// Halted is a resting state: no more pulls, no more changes.
	mark := h.w.markDown()
	h.advance(time.Minute)
	if quiet := h.w.opsSince(mark); len(quiet) > 0 {
		t.Fatalf("the halted rollout keeps acting: %v", quiet)
	}
}

// halted returns the node the rollout of rev halted on.
func halted(t *testing.T, h *harness, rev string) string {
	t.Helper()
	node, _, ok := h.ctl.rollout.Halted(rev)
	if !ok {
		t.Fatalf("the rollout of %s did not halt", rev)
	}
	return node
}

// resume sets a corrected spec and checks that the rollout completes,
// one camera at a time.
func resume(t *testing.T, h *harness, fixed *v1.Swarm, rev string) {
	t.Helper()
	h.w.markDown()
	h.ctl.SetSpec(fixed, rev)
	h.advance(10 * time.Second)
	for _, n := range threeNodes {
		if got, want := h.camera(n).Hash, hashOf(t, fixed, n); got != want {
			t.Fatalf("%s: spec %s, want %s: the corrected spec did not resume the rollout", n, got, want)
		}
		if st := h.status(n); st.Rollout != nil || st.Phase != v1.PhaseReady {
			t.Fatalf("%s: phase %s, rollout %+v after the rollout completed", n, st.Phase, st.Rollout)
		}
	}
	if h.w.maxDown > 1 {
		t.Fatalf("%d cameras down at once while resuming", h.w.maxDown)
	}
}

func TestRolloutHaltsOnACameraThatExits(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	bad := edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"BAD": "1"} })
	mark := h.w.markDown()

	h.ctl.SetSpec(bad, "r2")
	h.advance(30 * time.Second) // several slot retries: the halt holds
	node := halted(t, h, "r2")
	ops := h.w.opsSince(mark)
	haltedBy(t, h, spec, "r2", node, "exited with code 2", ops)
	starts := 0
	for _, o := range ops {
		if o.Node == node && o.Op == "start" {
			starts++
		}
	}
	if starts != 2 {
		t.Fatalf("%s: %d starts, want 2 (the bad camera once, then the previous spec)\n%v", node, starts, ops)
	}

	resume(t, h, edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"GOOD": "1"} }), "r3")
}

func TestRolloutHaltsOnACameraThatNeverAnswers(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	hung := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:hung" })
	h.w.set(func() { h.w.hung[hung.ImageRef()] = true })
	mark := h.w.markDown()

	h.ctl.SetSpec(hung, "r2")
	h.advance(9 * time.Second) // within ready_timeout: still trying
	if _, _, ok := h.ctl.rollout.Halted("r2"); ok {
		t.Fatal("halted before ready_timeout")
	}
	h.advance(30 * time.Second)
	node := halted(t, h, "r2")
	haltedBy(t, h, spec, "r2", node, "did not answer within 10s", h.w.opsSince(mark))

	resume(t, h, edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v2" }), "r3")
}

func TestBusyCameraDelaysAnUpdate(t *testing.T) {
	h, spec := rolloutHarness(t, func(s *v1.Swarm) { s.UpdateWait = v1.Seconds(60) })
	v2 := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v2" })
	h.w.set(func() { h.w.busy["gfa1"] = "exposing" })

	h.ctl.SetSpec(v2, "r2")
	h.advance(20 * time.Second)
	st := h.status("gfa1")
	if h.camera("gfa1").Hash != hashOf(t, spec, "gfa1") {
		t.Fatal("a busy camera was recreated")
	}
	if st.Rollout == nil || st.Rollout.State != v1.RolloutPending || !strings.Contains(st.Rollout.Message, "camera exposing") {
		t.Fatalf("rollout status %+v, want pending: camera exposing", st.Rollout)
	}
	for _, n := range []string{"fvc", "gfa2"} {
		if h.camera(n).Hash != hashOf(t, v2, n) {
			t.Fatalf("%s was held up by gfa1's exposure", n)
		}
	}
	// The exposure ends: the update goes on.
	h.w.set(func() { delete(h.w.busy, "gfa1") })
	h.advance(3 * time.Second)
	if h.camera("gfa1").Hash != hashOf(t, v2, "gfa1") || h.status("gfa1").Rollout != nil {
		t.Fatalf("gfa1 not updated once idle: rollout %+v", h.status("gfa1").Rollout)
	}

	// Busy for longer than update_wait: the update goes on after it.
	v3 := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v3" })
	h.w.set(func() { h.w.busy["gfa1"] = "exposing" })
	h.ctl.SetSpec(v3, "r3")
	h.advance(50 * time.Second)
	if h.camera("gfa1").Hash == hashOf(t, v3, "gfa1") {
		t.Fatal("updated before update_wait")
	}
	h.advance(15 * time.Second)
	if h.camera("gfa1").Hash != hashOf(t, v3, "gfa1") {
		t.Fatal("still waiting for the busy camera after update_wait")
	}

	// An operator's forced reconcile does not wait, and no time passes.
	before, _ := h.eng("gfa1").Container(spec.ContainerNameFor("gfa1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := h.ctl.ConvergeResults(ctx, []string{"gfa1"}, v1.ConvergeOptions{Force: true})[0]
	after, _ := h.eng("gfa1").Container(spec.ContainerNameFor("gfa1"))
	if !res.Converged() || after.ID == before.ID || after.State != "running" {
		t.Fatalf("forced reconcile of a busy camera: error %q, container %s → %s (%s)", res.Error, before.ID[:8], after.ID[:8], after.State)
	}
}

func TestRolloutSurvivesAFailedCreate(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	v2 := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v2" })
	for _, n := range threeNodes {
		h.eng(n).Fail("CreateContainer", errors.New("no space left on device"))
	}
	h.w.markDown()
	h.ctl.SetSpec(v2, "r2")
	h.advance(5 * time.Second) // one camera removed, its replacement fails
	for _, n := range threeNodes {
		h.eng(n).Fail("CreateContainer", nil)
	}
	h.advance(2 * time.Minute)
	for _, n := range threeNodes {
		if got, want := h.camera(n).Hash, hashOf(t, v2, n); got != want || h.camera(n).State != "running" {
			t.Fatalf("%s: camera %s with spec %s, want running %s: the rollout stalled", n, h.camera(n).State, got, want)
		}
	}
	if h.w.maxDown > 1 {
		t.Fatalf("%d cameras down at once", h.w.maxDown)
	}
}

// No slot is given for a revision while another node still pulls its
// image; the end of that pull wakes the node that asked.
func TestNoSlotWhileAnotherNodePulls(t *testing.T) {
	var woken []string
	r := NewRollout(1, func(n string) { woken = append(woken, n) })
	r.Pulling("gfa2", "r2")
	r.Pulling("fvc", "r1") // another revision does not hold r2 back
	if r.Acquire("gfa1", "r2") {
		t.Fatal("a slot was given while gfa2 still pulls r2")
	}
	r.Pulled("gfa2")
	if !slices.Contains(woken, "gfa1") {
		t.Fatalf("the end of the pull woke %v, not gfa1", woken)
	}
	if !r.Acquire("gfa1", "r2") {
		t.Fatal("no slot once every pull of r2 ended")
	}
}
