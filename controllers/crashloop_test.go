package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func TestCrashTrackerSchedule(t *testing.T) {
	c := crashTracker{policy: CrashBackoff{Initial: time.Second, Max: 8 * time.Second, ResetAfter: time.Minute, NeverUpFactor: 4}}
	t0 := epoch
	var waits []time.Duration
	for i := range 7 {
		start := t0.Add(time.Duration(i) * time.Minute)
		if !c.observeStop("c1", start, start.Add(time.Second), 2, true, start.Add(time.Second)) {
			t.Fatalf("stop %d not counted", i)
		}
		waits = append(waits, c.wait())
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v (first restart immediate, then doubling to Max)", waits, want)
	}
	// The same stop seen twice counts once.
	last := t0.Add(6 * time.Minute)
	if c.observeStop("c1", last, last.Add(time.Second), 2, true, last) || c.stops != 7 {
		t.Fatalf("a stop observed twice was counted twice (stops %d)", c.stops)
	}
	// A run of ResetAfter forgets the loop, and so does a stop after one.
	c.ranLongEnough(last, last.Add(59*time.Second))
	if !c.looping() {
		t.Fatal("forgot the loop before ResetAfter")
	}
	c.ranLongEnough(last, last.Add(time.Minute))
	if c.looping() || c.wait() != 0 {
		t.Fatal("a camera that ran ResetAfter is still backed off")
	}
	c.stops = 5
	c.observeStop("c2", last, last.Add(2*time.Minute), 1, true, last.Add(2*time.Minute))
	if c.stops != 1 || c.wait() != 0 {
		t.Fatalf("a stop after a long run: stops %d, wait %v; want 1, 0", c.stops, c.wait())
	}
	// A camera that stops before it ever comes up backs off by
	// NeverUpFactor.
	c.forget()
	waits = waits[:0]
	for i := range 5 {
		start := t0.Add(time.Hour + time.Duration(i)*time.Minute)
		c.observeStop("c3", start, start.Add(time.Millisecond), 2, false, start.Add(time.Millisecond))
		waits = append(waits, c.wait())
	}
	want = []time.Duration{0, time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if !slices.Equal(waits, want) {
		t.Fatalf("never up: waits %v, want %v", waits, want)
	}
}

// crashHarness is one node whose camera exits with code 2 at every start.
func crashHarness(t *testing.T) (*harness, string) {
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1")
	h.eng("gfa1").SetCrash(2)
	h.start()
	return h, spec.ContainerNameFor("gfa1")
}

func TestCrashLoopBacksOff(t *testing.T) {
	h, _ := crashHarness(t)
	e := h.eng("gfa1")

	// The first restart is immediate: two starts with no time passing.
	if n := e.Calls("StartContainer"); n != 2 {
		t.Fatalf("%d starts at once, want 2 (the first start and one immediate restart)", n)
	}
	st := h.status("gfa1")
	if st.Phase != v1.PhaseCrashLoopBackOff || st.CrashLoop == nil {
		t.Fatalf("phase %s (%s), want CrashLoopBackOff", st.Phase, st.Message)
	}
	cl := st.CrashLoop
	if cl.Restarts != 2 || cl.LastExitCode != 2 || cl.Backoff.D() != 100*time.Millisecond {
		t.Fatalf("crash loop %+v, want 2 stops, exit code 2, backoff 100ms", *cl)
	}
	if want := h.clock.Now().Add(100 * time.Millisecond); cl.NextAttempt.Sub(want).Abs() > time.Millisecond {
		t.Fatalf("next attempt %v, want about %v", cl.NextAttempt, want)
	}
	if len(cl.LastLog) == 0 || !strings.Contains(cl.LastLog[len(cl.LastLog)-1], "exiting with code 2") {
		t.Fatalf("last log %q lacks the container's last line", cl.LastLog)
	}
	if st.Restarts != 1 {
		t.Fatalf("status restarts %d, want 1 (fliswarm restarted the camera once)", st.Restarts)
	}

	// Engine events and the resync do not bypass the backoff.
	spec, _ := h.ctl.Spec()
	ctr, _ := e.Container(spec.ContainerNameFor("gfa1"))
	for range 5 {
		e.emit(e.event(&fakeContainer{Container: ctr}, "die", "exitCode", "2"))
	}
	h.settle()
	if n := e.Calls("StartContainer"); n != 2 {
		t.Fatalf("die events bypassed the backoff: %d starts", n)
	}

	// A minute of fake time; the camera never comes up, so the waits
	// quadruple: starts at 0, 0, 0.1, 0.5, 2.1, 8.5, 34.1 s.
	h.advance(time.Minute - time.Millisecond)
	n := e.Calls("StartContainer")
	t.Logf("%d starts in the first minute", n)
	if n != 7 {
		t.Fatalf("%d starts in the first minute, want 7", n)
	}
	st = h.status("gfa1")
	if st.Phase != v1.PhaseCrashLoopBackOff || st.CrashLoop.Backoff.D() != 102400*time.Millisecond {
		t.Fatalf("after a minute: phase %s, crash loop %+v; want a 102.4s backoff", st.Phase, st.CrashLoop)
	}
	// One log line per attempt, not one per event.
	if n, starts := h.logCount("camera keeps stopping"), e.Calls("StartContainer"); n > starts {
		t.Fatalf("%d backoff log lines for %d starts", n, starts)
	}
}

func TestCrashLoopOperatorBypassesOnce(t *testing.T) {
	h, _ := crashHarness(t)
	e := h.eng("gfa1")
	before := e.Calls("StartContainer")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := h.ctl.ConvergeResults(ctx, []string{"gfa1"}, v1.ConvergeOptions{})[0]
	if n := e.Calls("StartContainer"); n != before+1 {
		t.Fatalf("operator request: %d starts, want exactly one more than %d", n, before)
	}
	if res.Converged() || !strings.Contains(res.Error, "CrashLoopBackOff") {
		t.Fatalf("result error %q, want the crash loop named", res.Error)
	}
	if !slices.ContainsFunc(res.Actions, func(a v1.Action) bool { return a.Type == ActionStartContainer }) {
		t.Fatalf("result actions %v lack the start", res.Actions)
	}
	h.settle()
	if n := e.Calls("StartContainer"); n != before+1 {
		t.Fatalf("the bypass held for more than one start: %d starts", n)
	}
}

func TestCrashLoopResetsAfterARun(t *testing.T) {
	h, name := crashHarness(t)
	e := h.eng("gfa1")
	h.advance(10 * time.Second) // starts at 0.1, 0.5, 2.1, 8.5 s
	e.SetCrash(0)               // the camera is mended
	h.advance(30 * time.Second) // started at 34.1 s, and runs
	if c := h.camera("gfa1"); c.State != "running" {
		t.Fatalf("camera %s after the fix", c.State)
	}
	if h.status("gfa1").CrashLoop == nil {
		t.Fatal("the crash loop was forgotten before ResetAfter")
	}
	h.advance(DefaultCrashBackoff.ResetAfter - 30*time.Second)
	if h.status("gfa1").CrashLoop == nil {
		t.Fatal("the crash loop was forgotten before ResetAfter")
	}
	h.advance(30*time.Second + testSwarm().ResyncInterval.D()) // seen at the next resync
	st := h.status("gfa1")
	if st.CrashLoop != nil || st.Phase != v1.PhaseReady {
		t.Fatalf("after ResetAfter of running: phase %s, crash loop %+v", st.Phase, st.CrashLoop)
	}
	// The next stop is restarted at once again.
	starts := e.Calls("StartContainer")
	e.Kill(name, 1)
	h.settle()
	if e.Calls("StartContainer") != starts+1 || h.camera("gfa1").State != "running" {
		t.Fatalf("a stop after a long run was not restarted at once")
	}
}

// A camera that comes up each time and is then killed again and again is
// restarted on the doubling schedule (half Docker's waits), not on the
// steeper one of a camera that cannot start.
func TestKilledCameraThatCameUpDoubles(t *testing.T) {
	h, name := oneNode(t)
	e := h.eng("gfa1")
	for i, want := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		e.Kill(name, 137)
		h.settle()
		var got time.Duration
		if cl := h.status("gfa1").CrashLoop; cl != nil {
			got = cl.Backoff.D()
		}
		if got != want {
			t.Fatalf("kill %d: backoff %v, want %v", i+1, got, want)
		}
		h.advance(want)
		h.probed()
		h.requireReady("gfa1")
	}
}
