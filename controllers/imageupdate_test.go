package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

const (
	tagV1    = "sdss5/flicamera:v1"
	repoV1   = "sdss5/flicamera"
	digestD1 = "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"
	digestD2 = "sha256:d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2"
)

// imageHarness runs three converged nodes with image updates every 10 s,
// the tag naming D1 at the registry. registryDown makes the registry fail
// from the start (no digest pinned yet).
func imageHarness(t *testing.T, registryDown bool) *harness {
	t.Helper()
	spec := testSwarm(threeNodes...)
	spec.ReadyTimeout = v1.Seconds(10)
	spec.ImageUpdateInterval = v1.Seconds(10)
	h := newHarness(t, spec, "r1")
	h.w.push(tagV1, digestD1)
	if registryDown {
		h.w.set(func() { h.w.registryErr = errors.New("dial tcp 10.1.0.1:5000: connect: connection refused") })
	}
	h.start()
	h.probed()
	h.requireReady(threeNodes...)
	for _, n := range threeNodes {
		if c, _ := h.eng(n).Container("flicamera-" + n); c.ImageID != registryImage(repoV1, digestD1).ID {
			t.Fatalf("%s runs image %s, want D1's", n, c.ImageID)
		}
	}
	return h
}

// runsDigest fails unless node's camera runs the image of digest and
// status says so.
func runsDigest(t *testing.T, h *harness, node, digest string) {
	t.Helper()
	c, ok := h.eng(node).Container("flicamera-" + node)
	if !ok || c.State != "running" || c.ImageID != registryImage(repoV1, digest).ID {
		t.Fatalf("%s: container %+v, want running %s@%s", node, c, repoV1, digest)
	}
	if st := h.status(node); st.Image.Digest != digest {
		t.Fatalf("%s: status digest %q, want %s", node, st.Image.Digest, digest)
	}
}

func TestImageUpdateRollsOutNewDigestOneAtATime(t *testing.T) {
	h := imageHarness(t, false)
	for _, n := range threeNodes {
		runsDigest(t, h, n, digestD1) // pinned at once, without touching a camera
		if st := h.status(n); st.Image.LatestDigest != digestD1 || st.Image.UpdateWaiting || !strings.HasSuffix(st.ObservedRevision, "@sha256:d1d1d1d1d1d1") {
			t.Fatalf("%s: image status %+v, revision %s; want D1 pinned, no update waiting", n, st.Image, st.ObservedRevision)
		}
	}

	h.w.push(tagV1, digestD2)
	h.w.set(func() { h.w.pullBarrier = h.w.pullsStarted + 3; h.w.maxPulls = 0 })
	mark := h.w.markDown()
	h.advance(10 * time.Second) // the next ask to the registry
	h.advance(10 * time.Second)
	for _, n := range threeNodes {
		runsDigest(t, h, n, digestD2)
		if c, _ := h.eng(n).Container("flicamera-" + n); c.Image != repoV1+"@"+digestD2 {
			t.Fatalf("%s: container created from %s, want the digest", n, c.Image)
		}
		if st := h.status(n); st.Image.UpdateWaiting || st.Image.LatestDigest != digestD2 {
			t.Fatalf("%s: image status %+v after the update", n, st.Image)
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
		t.Fatalf("%d pulls before the first camera was removed, %d at once; want 3 and 3\n%v", pulls, h.w.maxPulls, ops)
	}
	if h.w.maxDown != 1 {
		t.Fatalf("%d cameras down at once, want 1 (max_unavailable 1)\n%v", h.w.maxDown, ops)
	}
	// The nodes' tag follows the registry's.
	for _, n := range threeNodes {
		if img, err := h.eng(n).InspectImage(t.Context(), tagV1); err != nil || img.ID != registryImage(repoV1, digestD2).ID {
			t.Fatalf("%s: tag %s names %s (%v), want D2's image", n, tagV1, img.ID, err)
		}
	}
}

func TestImageUpdateWaitsForAnIdleCamera(t *testing.T) {
	h := imageHarness(t, false)
	h.w.set(func() { h.w.busy["gfa1"] = "exposing" })
	h.w.push(tagV1, digestD2)
	h.advance(10 * time.Second)
	h.advance(10 * time.Second)
	runsDigest(t, h, "gfa1", digestD1)
	if st := h.status("gfa1"); !st.Image.UpdateWaiting || st.Rollout == nil || !strings.Contains(st.Rollout.Message, "exposing") {
		t.Fatalf("gfa1: image %+v, rollout %+v; want an update waiting for the exposure", st.Image, st.Rollout)
	}
	h.w.set(func() { delete(h.w.busy, "gfa1") })
	h.advance(5 * time.Second)
	runsDigest(t, h, "gfa1", digestD2)
}

func TestImageUpdateRegistryDownTouchesNothing(t *testing.T) {
	h := imageHarness(t, false)
	h.w.push(tagV1, digestD2)
	h.w.set(func() { h.w.registryErr = errors.New("dial tcp 10.1.0.1:5000: connect: connection refused") })
	mark := h.w.markDown()
	h.advance(time.Minute)
	if ops := h.w.opsSince(mark); len(ops) > 0 {
		t.Fatalf("the registry being down made changes: %v", ops)
	}
	for _, n := range threeNodes {
		runsDigest(t, h, n, digestD1)
		if st := h.status(n); !strings.Contains(st.Image.RegistryError, "connection refused") || st.Phase != v1.PhaseReady {
			t.Fatalf("%s: phase %s, image %+v; want Ready with the registry error", n, st.Phase, st.Image)
		}
	}
	if got := h.eng("fvc").Calls("RegistryDigest"); got < 6 {
		t.Fatalf("the registry was asked %d times in a minute, want one every 10 s", got)
	}
	if h.logCount("cannot read the image's digest") == 0 {
		t.Fatal("the registry failure was not logged")
	}
	// Back: the next ask rolls the update out.
	h.w.set(func() { h.w.registryErr = nil })
	h.advance(10 * time.Second)
	h.advance(10 * time.Second)
	for _, n := range threeNodes {
		runsDigest(t, h, n, digestD2)
		if st := h.status(n); st.Image.RegistryError != "" {
			t.Fatalf("%s: registry error %q after it answered", n, st.Image.RegistryError)
		}
	}
}

// A camera of the new image that does not answer halts the update on its
// node, which goes back to the image it ran (though its tag now names the
// new one); the other nodes are not touched.
func TestImageUpdateHaltPutsBackPreviousDigest(t *testing.T) {
	for _, tc := range []struct {
		name string
		// pinnedFirst: D1 was pinned before D2 came; else the registry
		// was down until D2 was there (the first digest read is new).
		pinnedFirst bool
	}{{"pinned", true}, {"first-read", false}} {
		t.Run(tc.name, func(t *testing.T) {
			h := imageHarness(t, !tc.pinnedFirst)
			h.w.push(tagV1, digestD2)
			h.w.set(func() { h.w.hung[repoV1+"@"+digestD2] = true; h.w.registryErr = nil })
			mark := h.w.markDown()
			h.advance(10 * time.Second)
			h.advance(15 * time.Second) // ready_timeout 10 s
			ops := h.w.opsSince(mark)
			halted := ""
			for _, n := range threeNodes {
				runsDigest(t, h, n, digestD1)
				st := h.status(n)
				if st.Rollout == nil || !st.Image.UpdateWaiting {
					t.Fatalf("%s: rollout %+v, image %+v; want the update halted and waiting", n, st.Rollout, st.Image)
				}
				if st.Rollout.State == v1.RolloutHalted {
					halted = n
				}
			}
			if halted == "" {
				t.Fatalf("no node says halted\n%v", ops)
			}
			if c, _ := h.eng(halted).Container("flicamera-" + halted); c.ImageID != registryImage(repoV1, digestD1).ID {
				t.Fatalf("%s was put back running %s, want the previous digest's image", halted, c.ImageID)
			}
			for _, o := range ops {
				if o.Node != halted && (o.Op == "remove" || o.Op == "create") {
					t.Fatalf("%s was touched by the halted update: %v", o.Node, o)
				}
			}
			if img, _ := h.eng(halted).InspectImage(t.Context(), tagV1); img.ID != registryImage(repoV1, digestD2).ID {
				t.Fatalf("%s: the tag does not name D2 (%s): the test does not show the pin", halted, img.ID)
			}
			if h.w.maxDown != 1 {
				t.Fatalf("%d cameras down at once, want 1\n%v", h.w.maxDown, ops)
			}
			// Resting: nothing more happens.
			mark = h.w.markDown()
			h.advance(30 * time.Second)
			if quiet := h.w.opsSince(mark); len(quiet) > 0 {
				t.Fatalf("the halted update keeps acting: %v", quiet)
			}
		})
	}
}

func TestImageUpdateValidation(t *testing.T) {
	for _, tc := range []struct {
		d    v1.Duration
		want string
	}{{v1.Seconds(-1), "must not be negative"}, {v1.Seconds(0.5), "at least 1 s"}, {0, ""}, {v1.Seconds(1), ""}} {
		s := testSwarm("gfa1")
		s.ImageUpdateInterval = tc.d
		errs := s.Validate(v1.Paths{Nodes: "nodes", EnabledNodes: "enabled_nodes"})
		got := ""
		for _, e := range errs {
			if strings.Contains(e.Error(), "image_update_interval") {
				got = e.Error()
			}
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("image_update_interval %s: %q, want an error with %q", tc.d.D(), got, tc.want)
		}
	}
}
