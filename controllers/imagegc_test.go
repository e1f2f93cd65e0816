package controllers

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/events"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func TestRepoPath(t *testing.T) {
	for in, want := range map[string]string{
		"sdss5/flicamera:v1":                     "sdss5/flicamera",
		"sdss5/flicamera":                        "sdss5/flicamera",
		"10.1.0.1:5000/sdss5/flicamera:v1":       "sdss5/flicamera",
		"localhost/sdss5/flicamera":              "sdss5/flicamera",
		"ghcr.io/sdss5/flicamera@sha256:abcd":    "sdss5/flicamera",
		"docker.io/library/flicamera:latest":     "flicamera",
		"flicamera":                              "flicamera",
		"10.224.0.1:5004/flicamera:v2":           "flicamera",
		"sdss5/flicamera-dev:v1":                 "sdss5/flicamera-dev",
		"registry:5000/a/b/c:tag@sha256:0":       "a/b/c",
		"sdss5/flicamera:v1@sha256:0123456789ab": "sdss5/flicamera",
	} {
		if got := repoPath(in); got != want {
			t.Errorf("repoPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGCVictims(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 1, 1, h, 0, 0, 0, time.UTC) }
	img := func(id string, h int, refs ...string) engine.LocalImage {
		li := engine.LocalImage{ID: id, Created: at(h)}
		for _, r := range refs {
			if strings.Contains(r, "@") {
				li.RepoDigests = append(li.RepoDigests, r)
			} else {
				li.RepoTags = append(li.RepoTags, r)
			}
		}
		return li
	}
	const repo = "sdss5/flicamera"
	images := []engine.LocalImage{
		img("v5", 5, "reg:5000/sdss5/flicamera:v5"),
		img("v4", 4, "sdss5/flicamera:v4", "sdss5/flicamera@sha256:44"),
		img("v3", 3, "sdss5/flicamera@sha256:33"), // its tag moved: digest only
		img("v2", 2, "sdss5/flicamera:v2", "sdss5/flicamera:latest"),
		img("v1", 1, "sdss5/flicamera:v1"),
		img("other", 0, "sdss5/other:v1"),
		img("dev", 0, "sdss5/flicamera-dev:v1"),
		img("shared", 0, "sdss5/flicamera:old", "ops/debug:1"), // also another repository's
		img("dangling", 0),
	}
	tests := []struct {
		name              string
		running, rollback string
		inUse             []string
		keep              int
		want              []string
	}{
		{name: "keep running and rollback", running: "v5", rollback: "v4", keep: 2, want: []string{"v3", "v2", "v1"}},
		{name: "rollback ranks before newer", running: "v1", rollback: "v2", keep: 2, want: []string{"v5", "v4", "v3"}},
		{name: "no rollback known: the newest", running: "v3", keep: 2, want: []string{"v4", "v2", "v1"}},
		{name: "keep 1", running: "v5", rollback: "v4", keep: 1, want: []string{"v4", "v3", "v2", "v1"}},
		{name: "in use is never removed", running: "v5", rollback: "v4", inUse: []string{"v2", "v1"}, keep: 2, want: []string{"v3"}},
		{name: "keep more than there are", running: "v5", keep: 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inUse := map[string]bool{}
			for _, id := range tt.inUse {
				inUse[id] = true
			}
			var got []string
			for _, v := range gcVictims(slices.Clone(images), repo, inUse, tt.running, tt.rollback, tt.keep) {
				got = append(got, v.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("victims %v, want %v", got, tt.want)
			}
		})
	}
}

type gcMetrics struct {
	fakeMetrics
	mu      sync.Mutex
	removed map[string]int
	bytes   map[string]int64
}

func (m *gcMetrics) ImageRemoved(node string, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removed[node]++
	m.bytes[node] += bytes
}

// imageNames are the names of the images stored on node's engine.
func imageNames(h *harness, node string) []string {
	var out []string
	for _, id := range h.eng(node).imageIDs() {
		e := h.eng(node)
		e.mu.Lock()
		tags, digests := e.namesLocked(id)
		e.mu.Unlock()
		out = append(out, strings.Join(append(tags, digests...), "+"))
	}
	slices.Sort(out)
	return out
}

// After three changes of image in a row, each node holds the image it
// runs and the one before it, and nothing of another repository or that
// a container uses is touched.
func TestImageGCAfterThreeImageChanges(t *testing.T) {
	m := &gcMetrics{removed: map[string]int{}, bytes: map[string]int64{}}
	spec := testSwarm(threeNodes...)
	spec.ReadyTimeout = v1.Seconds(10)
	var h *harness
	var rec *events.Recorder
	h = newHarness(t, spec, "r1", func(o *Options) { o.Metrics = m }, withEvents(&h, &rec))
	gfa1 := h.eng("gfa1")
	// Bystanders on gfa1: another repository, a repository whose name
	// starts like the camera's, an old camera image also tagged for
	// another repository, and an old camera image a stopped container
	// uses.
	gfa1.addImage("sha256:other", 7, "sdss5/other:v1")
	gfa1.addImage("sha256:dev", 7, "sdss5/flicamera-dev:v1")
	gfa1.addImage("sha256:shared", 7, "sdss5/flicamera:v0", "ops/debug:1")
	gfa1.addImage("sha256:used", 7, "10.1.0.1:5000/sdss5/flicamera:debug")
	gfa1.mu.Lock()
	gfa1.containers["dbg"] = &fakeContainer{Container: engine.Container{ID: "dbg", Name: "debug", ImageID: "sha256:used", State: "exited"}}
	gfa1.mu.Unlock()
	h.start()
	h.probed()
	h.requireReady(threeNodes...)

	for i, tag := range []string{"v2", "v3", "v4"} {
		next := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:" + tag })
		h.ctl.SetSpec(next, fmt.Sprintf("r%d", i+2))
		h.advance(10 * time.Second)
		h.requireReady(threeNodes...)
	}
	// Each removal is an event of its node: v1 then v2.
	requireEventsInOrder(t, rec, "gfa2", "ImageRemoved:sdss5/flicamera:v1", "ImageRemoved:sdss5/flicamera:v2")
	for _, n := range threeNodes {
		want := []string{"sdss5/flicamera:v3", "sdss5/flicamera:v4"}
		if n == "gfa1" {
			want = append(want, "10.1.0.1:5000/sdss5/flicamera:debug", "ops/debug:1+sdss5/flicamera:v0", "sdss5/flicamera-dev:v1", "sdss5/other:v1")
		}
		slices.Sort(want)
		if got := imageNames(h, n); !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", n, got, want)
		}
		if m.removed[n] != 2 || m.bytes[n] != 2*fakeImageSize {
			t.Errorf("%s: metrics count %d images, %d bytes removed; want 2, %d", n, m.removed[n], m.bytes[n], 2*fakeImageSize)
		}
	}
	if c := h.logCount("image kept: the engine refuses"); c != 0 {
		t.Errorf("the collection asked to remove an image in use (%d refusals)", c)
	}
	if c := h.logCount(`"image removed"`); c != 6 {
		t.Errorf("%d \"image removed\" log lines, want 6", c)
	}
	if h.logCount(`"tags"="sdss5/flicamera:v1"`) != 3 {
		t.Error("the log lines of removals do not name the image's tags")
	}
	// Each change collected once: no collection on a resync.
	lists := gfa1.Calls("ListImages")
	h.advance(2 * time.Minute)
	if got := gfa1.Calls("ListImages"); got != lists {
		t.Errorf("resyncs listed images %d more times, want none", got-lists)
	}
}

// The collection goes back to the camera the rollout replaced, not the
// newest other image: after v1 → v3 → v2, v3 is kept, v1 goes.
func TestImageGCKeepsTheImageItWouldGoBackTo(t *testing.T) {
	spec := testSwarm("gfa1")
	spec.ReadyTimeout = v1.Seconds(10)
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	for i, tag := range []string{"v3", "v2"} {
		h.ctl.SetSpec(edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:" + tag }), fmt.Sprintf("r%d", i+2))
		h.advance(10 * time.Second)
		h.requireReady("gfa1")
	}
	if got, want := imageNames(h, "gfa1"), []string{"sdss5/flicamera:v2", "sdss5/flicamera:v3"}; !slices.Equal(got, want) {
		t.Fatalf("gfa1 holds %v, want %v", got, want)
	}
}

// An image the engine refuses to remove (in use: the conflict Docker
// reports) is logged and kept; keep 0 removes nothing.
func TestImageGCEngineRefusalAndOff(t *testing.T) {
	spec := testSwarm("gfa1")
	spec.ReadyTimeout = v1.Seconds(10)
	h := newHarness(t, spec, "r1")
	h.start()
	h.probed()
	for i, tag := range []string{"v2", "v3"} {
		h.ctl.SetSpec(edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:" + tag }), fmt.Sprintf("r%d", i+2))
		h.advance(10 * time.Second)
	}
	if got, want := imageNames(h, "gfa1"), []string{"sdss5/flicamera:v2", "sdss5/flicamera:v3"}; !slices.Equal(got, want) {
		t.Fatalf("gfa1 holds %v, want %v", got, want)
	}
	// The engine refuses: a container appears on v2 between the list
	// and the removal (the fake refuses as Docker does).
	e := h.eng("gfa1")
	v2, _ := e.InspectImage(t.Context(), "sdss5/flicamera:v2")
	e.mu.Lock()
	e.containers["x"] = &fakeContainer{Container: engine.Container{ID: "x", Name: "x", ImageID: v2.ID, State: "running", Running: true}}
	e.mu.Unlock()
	err := e.RemoveImage(t.Context(), v2.ID)
	if err == nil || !engine.IsConflict(err) || !strings.Contains(err.Error(), "image is being used by running container") {
		t.Fatalf("removing an image in use: %v, want Docker's conflict", err)
	}
	e.mu.Lock()
	delete(e.containers, "x")
	e.mu.Unlock()

	off := edited(spec, func(s *v1.Swarm) { s.Image = "sdss5/flicamera:v4"; zero := 0; s.ImageGC.Keep = &zero })
	h.ctl.SetSpec(off, "r4")
	h.advance(10 * time.Second)
	h.requireReady("gfa1")
	if got := imageNames(h, "gfa1"); len(got) != 3 {
		t.Fatalf("with keep 0, gfa1 holds %v, want v2, v3 and v4", got)
	}
}

// The disk use is read at start and then every diskCheckEvery, not at
// each resync; above high_percent a warning is logged, the status says
// so, and the collection runs at that check.
func TestImageGCDiskUse(t *testing.T) {
	spec := testSwarm("gfa1")
	spec.ReadyTimeout = v1.Seconds(10)
	high := 85
	spec.ImageGC.HighPercent = &high
	h := newHarness(t, spec, "r1")
	e := h.eng("gfa1")
	e.setFS(engine.FSUsage{Size: 100 << 30, Used: 50 << 30, Available: 50 << 30})
	h.start()
	h.probed()
	st := h.status("gfa1")
	if st.Disk == nil || st.Disk.Images != 1 || st.Disk.ImagesSize != fakeImageSize || st.Disk.FSPercent != 50 || st.Disk.FSSize != 100<<30 {
		t.Fatalf("disk status %+v, want 1 image of %d bytes, 50 %% of 100 GiB", st.Disk, fakeImageSize)
	}
	calls := e.Calls("DiskUsage")
	h.advance(diskCheckEvery - time.Minute)
	if got := e.Calls("DiskUsage"); got != calls {
		t.Fatalf("disk use read %d times within %s, want none", got-calls, diskCheckEvery-time.Minute)
	}
	// Old images arrive behind fliswarm's back and the disk fills.
	e.addImage("sha256:old1", 1<<30, "sdss5/flicamera:old1")
	e.addImage("sha256:old2", 1<<30, "sdss5/flicamera:old2")
	e.addImage("sha256:keep", 1<<30, "sdss5/unrelated:1")
	e.setFS(engine.FSUsage{Size: 100 << 30, Used: 90 << 30, Available: 10 << 30})
	h.advance(2 * time.Minute)
	if got := e.Calls("DiskUsage"); got < calls+1 {
		t.Fatal("disk use not read again after diskCheckEvery")
	}
	if h.logCount("node disk nearly full") == 0 {
		t.Fatal("no warning with the disk 90 % full (high_percent 85)")
	}
	names := imageNames(h, "gfa1")
	if slices.Contains(names, "sdss5/flicamera:old1") || !slices.Contains(names, "sdss5/flicamera:old2") ||
		!slices.Contains(names, "sdss5/unrelated:1") || !slices.Contains(names, "sdss5/flicamera:v1") {
		t.Fatalf("after the disk check gfa1 holds %v: want v1, old2 (keep 2: the newest), sdss5/unrelated:1", names)
	}
	if st := h.status("gfa1"); st.Disk.Images != 3 {
		t.Fatalf("disk status after the collection %+v, want 3 images", st.Disk)
	}
}
