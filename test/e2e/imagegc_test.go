package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// TestImageGCKeepsRunningAndPrevious: after three image changes in a row
// (the bed's image, then v2, v3 and v4 of the camera's repository), each
// node holds exactly the image it runs and the one before it of that
// repository; an image of another repository on a node is untouched;
// each node's engine disk use is in the status and in `fliswarm status`.
func TestImageGCKeepsRunningAndPrevious(t *testing.T) {
	bed := testbed.Ensure(t)
	repo := bed.ImageRef[:strings.LastIndexByte(bed.ImageRef, ':')]
	v3, v4, other := repo+":gc-v3", repo+":gc-v4", bed.Registry+"/gc/bystander:1"
	mgr := func(stdin string, args ...string) {
		t.Helper()
		cmd := dockerCLI(bed.ManagerDockerHost, args...)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %s on the manager: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Two more images of the camera's repository and one of another,
	// each its own image (a label of its own), built from v2 and pushed.
	for _, ref := range []string{v3, v4, other} {
		mgr("FROM "+bed.ImageV2Ref+"\n", "build", "-q", "--label", "org.sdss.fliswarm.testbed.variant="+ref, "-t", ref, "-")
		mgr("", "push", "-q", ref)
	}
	bystander := bed.Nodes[0].Name
	bed.Docker(t, bystander, "pull", "-q", other)
	// The nodes as they were: without the test's images (the bed's own
	// are pulled again by the tests that need them).
	t.Cleanup(func() {
		for _, n := range bed.Nodes {
			_ = exec.Command("docker", "-H", n.Socket, "image", "rm", "-f", v3, v4, other).Run()
		}
	})

	e := newEnv(t, bed, nil)
	converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	for i, ref := range []string{bed.ImageV2Ref, v3, v4} {
		e.writeConfig(func(cfg map[string]any) { cfg["image"] = strings.TrimPrefix(ref, bed.Registry+"/") })
		waitImage(t, e, bed, ref, 3*time.Minute)
		t.Logf("change %d: every node runs %s", i+1, ref)
	}
	waitAllReady(t, e, time.Minute)

	e.eventually(30*time.Second, "each node holds v4 and v3 of the camera's repository", func() error {
		for _, n := range bed.Nodes {
			got := nodeImages(t, bed, n.Name, repo)
			want := []string{v3, v4}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s holds %v of %s, want %v", n.Name, got, repo, want)
			}
		}
		return nil
	})
	if got := nodeImages(t, bed, bystander, bed.Registry+"/gc/bystander"); !slices.Equal(got, []string{other}) {
		t.Errorf("%s: the image of another repository is gone (%v)", bystander, got)
	}
	removed := strings.Count(e.log(), "image removed")
	if removed != 2*len(bed.Nodes) {
		t.Errorf("%d \"image removed\" log lines, want %d (two per node)\n%s", removed, 2*len(bed.Nodes), e.log())
	}

	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Disk == nil || n.Disk.Images < 2 || n.Disk.ImagesSize <= 0 || n.Disk.CheckedAt.IsZero() {
			t.Errorf("%s: disk status %+v, want the engine's images", n.Name, n.Disk)
		}
	}
	out, _, code := e.run(30*time.Second, "status")
	if code != 0 || strings.Count(out, "disk: ") != len(bed.Nodes) {
		t.Errorf("fliswarm status (exit %d) lacks a disk line per node:\n%s", code, out)
	}
	t.Logf("status:\n%s", out)
}

// nodeImages are the names ("repo:tag", sorted) of node's images whose
// repository is repo; an image known by digest only is "repo@digest".
func nodeImages(t *testing.T, bed *testbed.Bed, node, repo string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n testbed.Node
	for _, x := range bed.Nodes {
		if x.Name == node {
			n = x
		}
	}
	imgs, err := engineFor(t, n).ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, img := range imgs {
		names := append(slices.Clone(img.RepoTags), img.RepoDigests...)
		for _, name := range names {
			base, _, _ := strings.Cut(name, "@")
			if i := strings.LastIndexByte(base, ':'); i > strings.LastIndexByte(base, '/') {
				base = base[:i]
			}
			if base == repo {
				if len(img.RepoTags) > 0 {
					name = img.RepoTags[0]
				}
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
