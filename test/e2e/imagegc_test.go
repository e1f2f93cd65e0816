package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
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

// TestImageGCDiskUseFromTheCamera: with df in the camera's image, each
// node's status gives the filesystem of its engine's data root as df
// reports it in the camera container (the size statfs gives for the data
// root on the host), `fliswarm status` shows it, and above high_percent
// the daemon warns. Without df (the bed's own image) the same call fails
// at once with a clear error.
func TestImageGCDiskUseFromTheCamera(t *testing.T) {
	bed := testbed.Ensure(t)
	ref := bed.Registry + "/gc/dfcam:1"
	// The bed's camera image with the host's df and the libraries it
	// needs added.
	ctxDir := t.TempDir()
	files := map[string]string{"/usr/bin/df": "df", "/lib/x86_64-linux-gnu/libc.so.6": "libc.so.6", "/lib64/ld-linux-x86-64.so.2": "ld.so"}
	for src, dst := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Skipf("no %s on this machine to put df in an image: %v", src, err)
		}
		if err := os.WriteFile(ctxDir+"/"+dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dockerfile := "FROM " + bed.ImageRef + "\nCOPY df /bin/df\nCOPY libc.so.6 /lib/x86_64-linux-gnu/libc.so.6\nCOPY ld.so /lib64/ld-linux-x86-64.so.2\n"
	if err := os.WriteFile(ctxDir+"/Dockerfile", []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"build", "-q", "-t", ref, ctxDir}, {"push", "-q", ref}} {
		cmd := dockerCLI(bed.ManagerDockerHost, args...)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %s on the manager: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() {
		for _, n := range bed.Nodes {
			_ = exec.Command("docker", "-H", n.Socket, "image", "rm", "-f", ref).Run()
		}
	})

	// Without df: a clear error, at once.
	n := bed.Nodes[0]
	bed.Docker(t, n.Name, "pull", "-q", bed.ImageRef)
	id := bed.Docker(t, n.Name, "run", "-d", "--network", "none", bed.ImageRef)
	t.Cleanup(func() { _ = exec.Command("docker", "-H", n.Socket, "rm", "-f", id).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	if fs, err := engineFor(t, n).FilesystemUsage(ctx, id); err == nil || !strings.Contains(err.Error(), "df") {
		t.Errorf("df in an image without it: %+v, %v; want an error naming df", fs, err)
	} else {
		t.Logf("without df (%s): %v", time.Since(start).Round(time.Millisecond), err)
	}

	e := newEnv(t, bed, func(cfg map[string]any) {
		cfg["image"] = "gc/dfcam:1"
		cfg["image_gc"] = map[string]any{"keep": 2, "high_percent": 1}
	})
	converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	e.eventually(30*time.Second, "every node's data root in the status", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, ns := range st.Nodes {
			if d := ns.Disk; d == nil || d.FSSize == 0 || d.FSPercent < 1 || d.FSPercent > 100 {
				return fmt.Errorf("%s: disk %+v", ns.Name, ns.Disk)
			}
		}
		return nil
	})
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes {
		root := bed.Docker(t, ns.Name, "info", "-f", "{{.DockerRootDir}}")
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(root, &sfs); err != nil {
			t.Fatal(err)
		}
		if want := int64(sfs.Blocks) * sfs.Frsize / 1024 * 1024; ns.Disk.FSSize != want {
			t.Errorf("%s: data root of %d bytes in status, statfs(%s) says %d", ns.Name, ns.Disk.FSSize, root, want)
		}
	}
	if !strings.Contains(e.log(), "node disk nearly full") {
		t.Errorf("no warning with high_percent 1:\n%s", e.log())
	}
	out, _, code := e.run(30*time.Second, "status")
	if code != 0 || strings.Count(out, "% of ") != len(bed.Nodes) {
		t.Errorf("fliswarm status (exit %d) lacks the data root's use:\n%s", code, out)
	}
}

// TestFilesystemUsageEndsWithItsContext: a df that does not end (a camera
// paused while it runs, a hung filesystem) holds the call only until its
// context ends: the attached stream is closed then.
func TestFilesystemUsageEndsWithItsContext(t *testing.T) {
	bed := testbed.Ensure(t)
	ref := bed.Registry + "/gc/slowdf:1"
	ctxDir := t.TempDir()
	src := "package main\n\nimport \"time\"\n\nfunc main() { time.Sleep(10 * time.Minute) }\n"
	if err := os.WriteFile(ctxDir+"/main.go", []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", "df", "main.go")
	build.Dir = ctxDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build of a df that sleeps: %v\n%s", err, out)
	}
	dockerfile := "FROM " + bed.ImageRef + "\nCOPY df /bin/df\n"
	if err := os.WriteFile(ctxDir+"/Dockerfile", []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"build", "-q", "-t", ref, ctxDir}, {"push", "-q", ref}} {
		cmd := dockerCLI(bed.ManagerDockerHost, args...)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker %s on the manager: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	n := bed.Nodes[0]
	bed.Docker(t, n.Name, "pull", "-q", ref)
	id := bed.Docker(t, n.Name, "run", "-d", "--network", "none", ref)
	t.Cleanup(func() {
		_ = exec.Command("docker", "-H", n.Socket, "rm", "-f", id).Run()
		_ = exec.Command("docker", "-H", n.Socket, "image", "rm", "-f", ref).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := engineFor(t, n).FilesystemUsage(ctx, id)
	took := time.Since(start)
	if err == nil || took > 10*time.Second {
		t.Fatalf("a df that never ends: error %v after %s; want an error within about 2 s", err, took)
	}
	t.Logf("a df that never ends: %v after %s", err, took.Round(time.Millisecond))
	// The engine answers about that container at once afterwards.
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer icancel()
	if _, err := engineFor(t, n).InspectContainer(ictx, id); err != nil {
		t.Fatalf("the engine after the abandoned df: %v", err)
	}
}
