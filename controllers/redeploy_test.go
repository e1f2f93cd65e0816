package controllers

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// converge runs a request while the fake clock moves on (the readiness
// probes of new cameras wait on it), and returns its results.
func (h *harness) converge(nodes []string, opts v1.ConvergeOptions) []v1.NodeResult {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan []v1.NodeResult, 1)
	go func() { done <- h.ctl.ConvergeResults(ctx, nodes, opts) }()
	for {
		select {
		case res := <-done:
			h.settle()
			return res
		default:
		}
		if ctx.Err() != nil {
			h.t.Fatal("the request did not end")
		}
		h.advance(firstProbe)
	}
}

// stepLog collects the steps a request hears of.
type stepLog struct {
	mu    sync.Mutex
	steps []v1.DeployStep
}

func (l *stepLog) add(s v1.DeployStep) { l.mu.Lock(); l.steps = append(l.steps, s); l.mu.Unlock() }

func (l *stepLog) kinds(node string) []v1.DeployStepKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []v1.DeployStepKind
	for _, s := range l.steps {
		if s.Node == node {
			out = append(out, s.Kind)
		}
	}
	return out
}

func opsOf(ops []fakeOp, node string) []string {
	var out []string
	for _, o := range ops {
		if o.Node == node && o.Op != "pulled" {
			out = append(out, o.Op+" "+o.Target)
		}
	}
	return out
}

// A redeploy of a healthy node whose spec and image are unchanged pulls
// the image and replaces the camera (the operators' way to deploy a
// flicamera pushed under the same tag), reports each step, ends when the
// new camera answers, and the new camera is the reconciler's own: it is
// not restarted again, nor counted as a restart or a crash.
func TestRedeployReplacesAnUnchangedCamera(t *testing.T) {
	spec := testSwarm("gfa1", "gfa2")
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1", "gfa2")
	name := spec.ContainerNameFor("gfa1")
	before, _ := h.eng("gfa1").Container(name)
	other, _ := h.eng("gfa2").Container(spec.ContainerNameFor("gfa2"))

	// Nothing changed: a plain request does nothing.
	if res := h.converge([]string{"gfa1"}, v1.ConvergeOptions{}); !res[0].Converged() || len(res[0].Actions) != 0 {
		t.Fatalf("plain converge of a converged node: %+v", res[0])
	}

	// The new flicamera is pushed under the same tag.
	h.w.push(spec.ImageRef(), "sha256:0000new")
	newID := registryImage(spec.ImageRef()[:strings.LastIndexByte(spec.ImageRef(), ':')], "sha256:0000new").ID
	mark := h.w.markDown()
	var log stepLog
	res := h.converge([]string{"gfa1"}, v1.ConvergeOptions{Redeploy: true, Progress: log.add})[0]
	if !res.Converged() {
		t.Fatalf("redeploy: %q", res.Error)
	}
	var acts []string
	for _, a := range res.Actions {
		acts = append(acts, string(a.Type)+" ("+a.Reason+")")
	}
	if want := []string{"pull-image (redeploy: pull the latest image)", "recreate-container (redeploy requested)"}; !slices.Equal(acts, want) {
		t.Fatalf("actions %v, want %v", acts, want)
	}
	if got, want := opsOf(h.w.opsSince(mark), "gfa1"), []string{"pull " + spec.ImageRef(),
		"stop " + name, "rename " + name + "→" + name + previousSuffix, // kept until the new camera answers
		"create " + name, "start " + name, "remove " + name + previousSuffix}; !slices.Equal(got, want) {
		t.Fatalf("engine ops on gfa1 %v, want %v", got, want)
	}
	if got := opsOf(h.w.opsSince(mark), "gfa2"); len(got) != 0 {
		t.Fatalf("gfa2 was touched: %v", got)
	}
	after, _ := h.eng("gfa1").Container(name)
	if after.ID == before.ID || after.State != "running" || after.ImageID != newID {
		t.Fatalf("after the redeploy: container %s (%s) from image %s; before %s", after.ID[:8], after.State, after.ImageID, before.ID[:8])
	}
	if got, want := log.kinds("gfa1"), []v1.DeployStepKind{v1.StepPull, v1.StepPulled, v1.StepRemoveContainer, v1.StepRun}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	log.mu.Lock()
	pulled, removed, run := log.steps[1], log.steps[2], log.steps[3]
	log.mu.Unlock()
	if pulled.ImageID != newID || !removed.Running || removed.Target != name || run.Image != spec.ImageRef() {
		t.Fatalf("steps say: pulled %+v, removed %+v, run %+v", pulled, removed, run)
	}
	st := h.status("gfa1")
	if st.Phase != v1.PhaseReady || st.Restarts != 0 || st.CrashLoop != nil || !st.DeviceConnected {
		t.Fatalf("status after the redeploy: phase %s, restarts %d, crash loop %+v, device %v", st.Phase, st.Restarts, st.CrashLoop, st.DeviceConnected)
	}

	// No second restart: resyncs and events leave the new camera alone.
	mark = h.w.markDown()
	starts := h.eng("gfa1").Calls("StartContainer")
	h.advance(3 * spec.ResyncInterval.D())
	if ops := opsOf(h.w.opsSince(mark), "gfa1"); len(ops) != 0 || h.eng("gfa1").Calls("StartContainer") != starts {
		t.Fatalf("after the redeploy the camera was touched again: %v", ops)
	}
	if now, _ := h.eng("gfa1").Container(name); now.ID != after.ID {
		t.Fatal("the new camera was replaced again")
	}
	if n := len(log.kinds("gfa1")); n != 4 {
		t.Fatalf("%d steps reported after the request ended", n-4)
	}
	if now, _ := h.eng("gfa2").Container(spec.ContainerNameFor("gfa2")); now.ID != other.ID {
		t.Fatal("gfa2's camera was replaced")
	}
}

// Two nodes redeployed at once with max_unavailable 1: both pull at once,
// one waits for the other's slot, and the redeploy stays owed to it over
// that wait: each pulls once and is replaced once, never both down.
func TestRedeployOwedOverASlotWait(t *testing.T) {
	spec := testSwarm("gfa1", "gfa2")
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1", "gfa2")
	before := map[string]string{}
	for _, n := range []string{"gfa1", "gfa2"} {
		c, _ := h.eng(n).Container(spec.ContainerNameFor(n))
		before[n] = c.ID
	}
	h.w.push(spec.ImageRef(), "sha256:0000new")
	newID := registryImage(spec.ImageRef()[:strings.LastIndexByte(spec.ImageRef(), ':')], "sha256:0000new").ID
	mark := h.w.markDown()
	var log stepLog
	res := h.converge([]string{"gfa1", "gfa2"}, v1.ConvergeOptions{Redeploy: true, Progress: log.add})
	for _, r := range res {
		c, _ := h.eng(r.Node).Container(spec.ContainerNameFor(r.Node))
		if !r.Converged() || c.ID == before[r.Node] || c.ImageID != newID {
			t.Fatalf("%s: error %q, container %s from %s", r.Node, r.Error, c.ID[:8], c.ImageID)
		}
		ops := opsOf(h.w.opsSince(mark), r.Node)
		if pulls := len(slices.DeleteFunc(slices.Clone(ops), func(o string) bool { return !strings.HasPrefix(o, "pull ") })); pulls != 1 {
			t.Errorf("%s pulled %d times: %v", r.Node, pulls, ops)
		}
		if creates := len(slices.DeleteFunc(ops, func(o string) bool { return !strings.HasPrefix(o, "create ") })); creates != 1 {
			t.Errorf("%s: %d containers created", r.Node, creates)
		}
		if got := log.kinds(r.Node); len(got) != 4 || got[3] != v1.StepRun {
			t.Errorf("%s: steps %v", r.Node, got)
		}
	}
	if h.w.maxDown > 1 {
		t.Fatalf("%d cameras down at once", h.w.maxDown)
	}
}

// A redeploy whose new container cannot be created stays owed: the retry
// creates it without pulling again, and the request ends once it answers;
// --force also recreates the volumes.
func TestRedeployRetriesAFailedCreate(t *testing.T) {
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	h.requireReady("gfa1")
	h.eng("gfa1").Fail("CreateContainer", errors.New("no space left on device"))
	mark := h.w.markDown()
	pulls, creates := h.eng("gfa1").Calls("PullImage"), h.eng("gfa1").Calls("CreateContainer")
	var res v1.NodeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res = h.ctl.ConvergeResults(ctx, []string{"gfa1"}, v1.ConvergeOptions{Force: true})[0]
	}()
	h.waitFor("the failed create", func() bool { return h.eng("gfa1").Calls("CreateContainer") > creates })
	h.settle()
	h.eng("gfa1").Fail("CreateContainer", nil)
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			if i > 400 {
				t.Fatal("the request did not end")
			}
			h.advance(100 * time.Millisecond)
			continue
		}
		break
	}
	if !res.Converged() {
		t.Fatalf("forced redeploy: %q", res.Error)
	}
	if n := h.eng("gfa1").Calls("CreateContainer") - creates; n < 2 {
		t.Fatalf("%d creates: the failure was not retried", n)
	}
	if n := h.eng("gfa1").Calls("PullImage") - pulls; n != 1 {
		t.Fatalf("%d pulls, want 1", n)
	}
	ops := opsOf(h.w.opsSince(mark), "gfa1")
	if n := len(slices.DeleteFunc(slices.Clone(ops), func(o string) bool { return o != "remove-volume data" })); n != 1 {
		t.Fatalf("the volume was recreated %d times: %v", n, ops)
	}
	if !slices.Contains(ops, "remove-volume data") || !slices.Contains(ops, "create-volume data") || h.camera("gfa1").State != "running" {
		t.Fatalf("forced redeploy ops %v, camera %s", ops, h.camera("gfa1").State)
	}
	if st := h.status("gfa1"); st.Restarts != 0 || st.CrashLoop != nil {
		t.Fatalf("restarts %d, crash loop %+v", st.Restarts, st.CrashLoop)
	}
}

// A pull's progress is reported coarsely: at most one report every
// pullReportEvery, however many chunks the engine reports.
func TestPullProgressIsCoarse(t *testing.T) {
	clock := newFakeClock()
	var log stepLog
	q := NewRequests(func(string) {})
	w := &waiter{gen: 1, done: make(chan struct{}), opts: v1.ConvergeOptions{Progress: log.add}}
	q.gen["gfa1"] = 1
	q.waiters["gfa1"] = []*waiter{w}
	rep := &pullReporter{r: &NodeReconciler{clock: clock}, t: q.begin("gfa1"), ref: "img"}
	for i := range 100 { // 10 s of chunks, one every 100 ms
		rep.progress(engine.PullProgress{Current: int64(i) << 20, Total: 100 << 20, Status: "abc: Downloading"})
		clock.Step(100 * time.Millisecond)
	}
	if n := len(log.kinds("gfa1")); n < 3 || n > 5 {
		t.Fatalf("%d progress reports over 10 s of a pull, want one every %s", n, pullReportEvery)
	}
	w.close()
	rep.progress(engine.PullProgress{Current: 1, Total: 2})
	clock.Step(time.Minute)
	rep.progress(engine.PullProgress{Current: 1, Total: 2})
	if n := len(log.kinds("gfa1")); n > 5 {
		t.Fatal("reported after the request ended")
	}
}
