package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// TestImageUpdateRollsOutRepushedTag: with image_update_interval set, an
// image pushed again under the tag the bed runs reaches every node
// without any operator command, pre-pulled everywhere first and then one
// camera at a time (judged from the engines' own events), each created
// from the new digest; status says which digest each node runs. The
// bed's image is pushed back afterwards.
func TestImageUpdateRollsOutRepushedTag(t *testing.T) {
	bed := testbed.Ensure(t)
	mgr := func(args ...string) string {
		t.Helper()
		out, err := dockerCLI(bed.ManagerDockerHost, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s on the manager: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	origID := mgr("image", "inspect", "-f", "{{.Id}}", bed.ImageRef)
	v2ID := mgr("image", "inspect", "-f", "{{.Id}}", bed.ImageV2Ref)
	if origID == v2ID {
		t.Fatalf("the bed's images %s and %s are the same image", bed.ImageRef, bed.ImageV2Ref)
	}

	e := newEnv(t, bed, func(cfg map[string]any) { cfg["image_update_interval"] = 1 })
	ids := converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	repo := bed.ImageRef[:strings.LastIndexByte(bed.ImageRef, ':')]
	// Pinned at once, without touching a camera: the status knows the
	// digest each node runs.
	var d1 string
	e.eventually(30*time.Second, "the registry digest pinned", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.Image.LatestDigest == "" || n.Image.Digest != n.Image.LatestDigest || n.Image.UpdateWaiting {
				return fmt.Errorf("%s: image %+v", n.Name, n.Image)
			}
			d1 = n.Image.LatestDigest
		}
		return nil
	})
	for _, n := range bed.Nodes {
		if c, err := runningContainer(t, n); err != nil || c.ID != ids[n.Name] {
			t.Fatalf("%s: pinning the digest it runs replaced the camera (%v)", n.Name, err)
		}
	}

	watch := watchRollout(t, bed)

	// Push v2 under the bed's tag; push the bed's image back at the end
	// and have every node's tag name it again.
	t.Cleanup(func() {
		mgr("tag", origID, bed.ImageRef)
		mgr("push", "-q", bed.ImageRef)
		for _, n := range bed.Nodes {
			bed.Docker(t, n.Name, "pull", "-q", bed.ImageRef)
		}
	})
	mgr("tag", bed.ImageV2Ref, bed.ImageRef)
	mgr("push", "-q", bed.ImageRef)
	pushed := time.Now()

	var d2 string
	e.eventually(3*time.Minute, "every node runs the image pushed again", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if c.ImageID != v2ID || !strings.HasPrefix(c.Image, repo+"@sha256:") {
				return fmt.Errorf("%s runs %s (%s)", n.Name, c.Image, c.ImageID)
			}
		}
		for _, n := range st.Nodes {
			if !n.Ready() || n.Image.UpdateWaiting || n.Image.Digest == d1 || n.Image.Digest != n.Image.LatestDigest {
				return fmt.Errorf("%s: phase %s, image %+v", n.Name, n.Phase, n.Image)
			}
			d2 = n.Image.Digest
		}
		return nil
	})
	t.Logf("rolled out %s → %s in %s", d1, d2, time.Since(pushed).Round(time.Millisecond))
	out, _, code := e.run(30*time.Second, "status")
	if code != 0 || !strings.Contains(out, "running "+d2+", registry "+d2) {
		t.Errorf("fliswarm status (exit %d) does not show the digests:\n%s", code, out)
	}

	watch.check(t)
}
