package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// historyOf returns node's kept previous camera and halt record.
func historyOf(h *harness, node string) (previous, halted *engine.Container) {
	if c, ok := h.eng(node).Container("flicamera-" + node + previousSuffix); ok {
		previous = &c
	}
	if c, ok := h.eng(node).Container("flicamera-" + node + haltedSuffix); ok {
		halted = &c
	}
	return previous, halted
}

// stillHalted checks, after a restart, that every camera runs the spec it
// ran (old), the halted node says RolloutHalted with reason and the
// others are held, and that nothing was done to any node since mark.
func stillHalted(t *testing.T, h *harness, old *v1.Swarm, rev, node, reason string, mark int) {
	t.Helper()
	for _, n := range threeNodes {
		if got, want := h.camera(n).Hash, hashOf(t, old, n); got != want || h.camera(n).State != "running" {
			t.Fatalf("%s: camera %s with spec %s, want running the previous spec %s", n, h.camera(n).State, got, want)
		}
		st := h.status(n)
		if st.Rollout == nil || st.Rollout.HaltedNode != node || st.Rollout.Revision != rev {
			t.Fatalf("%s: rollout %+v after the restart, want halted on %s", n, st.Rollout, node)
		}
		if n == node && (st.Phase != v1.PhaseRolloutHalted || !strings.Contains(st.Rollout.Message, reason)) {
			t.Fatalf("%s: phase %s, rollout %+v after the restart; want RolloutHalted because %q", n, st.Phase, st.Rollout, reason)
		}
		if n != node && st.Rollout.State != v1.RolloutHeld {
			t.Fatalf("%s: rollout state %q after the restart, want held", n, st.Rollout.State)
		}
	}
	if ops := h.w.opsSince(mark); len(ops) > 0 {
		t.Fatalf("the restarted controller acted on a halted rollout (halted on %s): %v", node, ops)
	}
}

// A halted rollout survives a restart: the halt is recorded on the node,
// the replaced camera is back (renamed and started, no create), and a
// controller with nothing in memory reads the halt back before it gives
// any node a slot.
func TestHaltedRolloutSurvivesARestart(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	bad := edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"BAD": "1"} })
	h.ctl.SetSpec(bad, "r2")
	h.advance(30 * time.Second)
	node := halted(t, h, "r2")
	for _, n := range threeNodes {
		prev, rec := historyOf(h, n)
		if prev != nil {
			t.Fatalf("%s: %s still kept after the halt", n, prev.Name)
		}
		if (rec != nil) != (n == node) {
			t.Fatalf("%s: halt record %v, want one on %s only", n, rec, node)
		}
	}
	_, rec := historyOf(h, node)
	if rec.State != "created" || !strings.Contains(rec.Labels[labelHaltReason], "exited with code 2") || rec.Labels[labelRole] != roleHalted {
		t.Fatalf("halt record %s: state %s, labels %v", rec.Name, rec.State, rec.Labels)
	}

	mark := h.w.markDown()
	h2 := h.restarted(bad, "r2")
	h2.start()
	h2.advance(time.Minute)
	stillHalted(t, h2, spec, "r2", node, "exited with code 2", mark)

	// A corrected spec lifts the halt: the record goes, the rollout ends.
	resume(t, h2, edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"GOOD": "1"} }), "r3")
	for _, n := range threeNodes {
		if prev, rec := historyOf(h2, n); prev != nil || rec != nil {
			t.Fatalf("%s: history left after the rollout completed: previous %v, halt record %v", n, prev, rec)
		}
	}
}

// A restart in the middle of a node's rollout (its new camera started,
// not answering yet) resumes it: the node takes its slot again, its new
// camera is judged since it started and, never answering, halts the
// rollout and goes back to the camera it replaced.
func TestRolloutInterruptedByARestartResumes(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	hung := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:hung" })
	h.w.set(func() { h.w.hung[hung.ImageRef()] = true })
	h.ctl.SetSpec(hung, "r2")
	var node string
	h.waitFor("a node to keep its replaced camera", func() bool {
		for _, n := range threeNodes {
			if prev, _ := historyOf(h, n); prev != nil {
				node = n
				return true
			}
		}
		return false
	})
	h.settle()
	oldID := func() string { p, _ := historyOf(h, node); return p.ID }()

	h2 := h.restarted(hung, "r2")
	h2.start()
	h2.advance(15 * time.Second) // ready_timeout 10 s, counted from the start before the restart
	if got := halted(t, h2, "r2"); got != node {
		t.Fatalf("the rollout halted on %s, want %s (the node interrupted)", got, node)
	}
	if c := h2.camera(node); c.State != "running" || c.Hash != hashOf(t, spec, node) {
		t.Fatalf("%s: camera %+v, want the replaced one running", node, c)
	}
	if c, _ := h2.eng(node).Container("flicamera-" + node); c.ID != oldID {
		t.Fatalf("%s: camera %s, want %s put back", node, short(c.ID), short(oldID))
	}
	if st := h2.status(node); st.Phase != v1.PhaseRolloutHalted || !strings.Contains(st.Rollout.Message, "did not answer") {
		t.Fatalf("%s: phase %s, rollout %+v", node, st.Phase, st.Rollout)
	}
	for _, n := range threeNodes {
		if n != node && h2.camera(n).Hash != hashOf(t, spec, n) {
			t.Fatalf("%s was updated while %s's rollout was unresolved", n, node)
		}
	}
}

// A camera that answers ends its rollout: the replaced camera is removed.
func TestReplacedCameraRemovedOnceTheNewOneAnswers(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	v2 := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v2" })
	h.ctl.SetSpec(v2, "r2")
	h.advance(10 * time.Second)
	for _, n := range threeNodes {
		if h.camera(n).Hash != hashOf(t, v2, n) {
			t.Fatalf("%s: rollout not complete", n)
		}
		if prev, rec := historyOf(h, n); prev != nil || rec != nil {
			t.Fatalf("%s: history left after the rollout: previous %v, halt record %v", n, prev, rec)
		}
	}
}

// The history containers are neither strays nor adopted, and a halt
// record of a spec no longer in force is removed.
func TestHistoryIsNotAStray(t *testing.T) {
	spec := testSwarm("gfa1")
	want, err := desired(spec, "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	name := want.Container.Name
	labels := want.Container.Config.Labels
	cs := []engine.Container{
		{ID: "a", Name: name, Labels: labels, State: "running", Running: true},
		{ID: "b", Name: name + previousSuffix, Labels: labels, State: "exited"},
		{ID: "c", Name: name + haltedSuffix, Labels: map[string]string{labelRole: roleHalted, labelHaltReason: "x"}, State: "created"},
	}
	rest, prev, rec := splitHistory(cs, name)
	if len(rest) != 1 || prev == nil || prev.ID != "b" || rec == nil || rec.ID != "c" {
		t.Fatalf("split: rest %v, previous %v, halted %v", rest, prev, rec)
	}
	have := Observed{Containers: rest, Previous: prev, Halted: rec}
	for _, a := range PlanNode("gfa1", want, have, PlanOptions{}).Actions {
		if a.ID == "b" || a.ID == "c" || strings.HasPrefix(a.Target, name+"-") {
			t.Fatalf("plan touches %s: %v", a.Target, a)
		}
	}
	// rec has no spec hash: a record of another spec, removed.
	if got := cleanupPlan(want, have, false); len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("cleanup %v, want the stale halt record removed", got)
	}
	if got := cleanupPlan(want, have, true); len(got) != 2 || got[0].ID != "b" {
		t.Fatalf("cleanup once the camera answers %v, want the previous camera and the record removed", got)
	}
}

// After a restart, no node takes a camera down before every node's
// history is read: here the halted node answers last.
func TestRestartReadsEveryHistoryBeforeASlot(t *testing.T) {
	h, spec := rolloutHarness(t, nil)
	bad := edited(spec, func(s *v1.Swarm) { s.Env = map[string]string{"BAD": "1"} })
	h.ctl.SetSpec(bad, "r2")
	h.advance(30 * time.Second)
	node := halted(t, h, "r2")

	mark := h.w.markDown()
	h2 := h.restarted(bad, "r2")
	release := h2.eng(node).Hold("ListContainers")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h2.ctl.Run(ctx); close(done) }()
	h2.stop = func() { cancel(); <-done }
	t.Cleanup(func() { release(); h2.stop() })
	for _, n := range threeNodes {
		if n != node {
			h2.waitFor(n+" to wait for the history", func() bool { st := h2.status(n); return st.Rollout != nil })
		}
	}
	release()
	h2.settle()
	h2.advance(time.Minute)
	stillHalted(t, h2, spec, "r2", node, "exited with code 2", mark)
}

// Without a daemon there is no camera client: a one-shot reconcile
// judges a camera by its port accepting (DialCamera), through SetCamera.
func TestOneShotReconcileJudgesThePort(t *testing.T) {
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1")
	h.w.onChange = nil // no camera clients
	h.ctl.SetCamera("gfa1", false, "")
	done := make(chan []v1.NodeResult)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- h.ctl.ReconcileOnce(ctx, []string{"gfa1"}, v1.ConvergeOptions{})
	}()
	for {
		select {
		case res := <-done:
			if res[0].Error != "" || !h.ctl.Store().CameraConnected("gfa1") {
				t.Fatalf("one-shot reconcile: %+v, camera connected %t", res[0], h.ctl.Store().CameraConnected("gfa1"))
			}
			return
		default:
			h.clock.Step(portEvery)
			time.Sleep(time.Millisecond)
		}
	}
}
