package engine

// Tests against a real Docker Engine.
//
// They run only when FLISWARM_TEST_DOCKER_HOST names an engine
// (tcp://host:port or unix:///path, e.g. one node engine of the test bed, or
// a private dockerd started for development) and are skipped otherwise.
// They need no registry and no network: the first test that needs an image
// builds "fliswarm-engine-test:latest" on that engine, FROM scratch, from a
// small static Go program compiled with the local go toolchain. Everything
// they create carries the label fliswarm.test=<unique run id> and is
// removed at the end. The containers are unprivileged with network "none".
//
// FLISWARM_TEST_REGISTRY, when also set, is host:port of a registry that
// engine may push to and pull from over plain HTTP (loopback registries
// are trusted by default; others need --insecure-registry):
// TestEnginePullFromRegistry pushes the test image there under a unique
// tag and pulls it back with PullImage.
//
// TestEngineEventsEngineStops needs an engine it may stop: it runs on the
// test bed (FLISWARM_E2E=1, as in make test), kills the last node's engine
// and starts it again when it ends.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// drainStream reads a build's or push's JSON progress stream to its end
// and returns the first error it reports.
func drainStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
	}
}

const testImage = "fliswarm-engine-test:latest"

// testEngine returns a client for the engine at FLISWARM_TEST_DOCKER_HOST,
// or skips the test.
func testEngine(t *testing.T) *Client {
	t.Helper()
	addr := os.Getenv("FLISWARM_TEST_DOCKER_HOST")
	if addr == "" {
		t.Skip("FLISWARM_TEST_DOCKER_HOST is not set: no engine to test against")
	}
	c, err := New("testnode", addr, Options{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("engine at %s: %v", addr, err)
	}
	return c
}

// runID labels what one test creates.
func runID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "fse-" + hex.EncodeToString(b)
}

var (
	imageOnce sync.Once
	imageErr  error
)

// sleeperSource is the test image's program: it waits for SIGTERM and
// then exits with status 3 (so a stop is told apart from a kill).
const sleeperSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-c:
		os.Exit(3)
	case <-time.After(time.Hour):
	}
}
`

// ensureTestImage builds testImage on the engine once per test binary.
func ensureTestImage(t *testing.T, c *Client) {
	t.Helper()
	imageOnce.Do(func() { imageErr = buildTestImage(t, c) })
	if imageErr != nil {
		t.Fatalf("building %s: %v", testImage, imageErr)
	}
}

func buildTestImage(t *testing.T, c *Client) error {
	dir, err := os.MkdirTemp("", "fliswarm-engine-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(sleeperSource), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module sleeper\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", "sleeper", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New(string(out) + err.Error())
	}
	bin, err := os.ReadFile(filepath.Join(dir, "sleeper"))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n")},
		{"sleeper", 0o755, bin},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := c.api.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{testImage}, Remove: true, ForceRemove: true})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	// The build's output is the same JSON stream as a pull's.
	if err := drainStream(res.Body); err != nil {
		return err
	}
	_, err = c.InspectImage(ctx, testImage)
	return err
}

// createTestContainer creates (not starts) an unprivileged container of
// the test image with the given labels; it is force-removed at cleanup.
func createTestContainer(t *testing.T, c *Client, name string, labels map[string]string) string {
	t.Helper()
	id, err := c.CreateContainer(context.Background(), name,
		&container.Config{Image: testImage, Labels: labels, Env: []string{"ACTOR_NAME=testnode"}},
		&container.HostConfig{NetworkMode: "none"})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	t.Cleanup(func() { _ = c.RemoveContainer(context.Background(), id, true) })
	return id
}

func TestEnginePing(t *testing.T) {
	c := testEngine(t)
	v := c.APIVersion()
	if !strings.HasPrefix(v, "1.") {
		t.Errorf("negotiated API version %q", v)
	}
	t.Logf("engine API version %s", v)
}

func TestEngineContainerLifecycle(t *testing.T) {
	c := testEngine(t)
	ensureTestImage(t, c)
	ctx := context.Background()
	run := runID(t)
	labels := map[string]string{"fliswarm.test": run, "fliswarm.node": "testnode"}
	name1, name2, name3 := run+"-one", run+"-two", run+"-other"

	id1 := createTestContainer(t, c, name1, labels)
	id2 := createTestContainer(t, c, name2, labels)
	id3 := createTestContainer(t, c, name3, map[string]string{"fliswarm.test": run})

	// A second container by the same name is a conflict.
	_, err := c.CreateContainer(ctx, name1, &container.Config{Image: testImage}, nil)
	if !IsConflict(err) {
		t.Errorf("CreateContainer with a name in use: %v, want a conflict", err)
	}
	// An image that is not there is not found.
	_, err = c.CreateContainer(ctx, run+"-noimage", &container.Config{Image: "fliswarm-engine-test:absent"}, nil)
	if !IsNotFound(err) || !strings.HasPrefix(err.Error(), "testnode: create container "+run+"-noimage: ") {
		t.Errorf("CreateContainer of a missing image: %v, want not found", err)
	}

	ctr, err := c.InspectContainer(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if ctr.ID != id1 || ctr.Name != name1 || ctr.Image != testImage || !strings.HasPrefix(ctr.ImageID, "sha256:") ||
		ctr.State != "created" || ctr.Running || ctr.Privileged || ctr.NetworkMode != "none" ||
		ctr.Labels["fliswarm.test"] != run || ctr.Created.IsZero() || !ctr.StartedAt.IsZero() {
		t.Errorf("InspectContainer after create = %+v", ctr)
	}

	// Listing: by labels, by names, both, de-duplicated, in creation order.
	tests := []struct {
		name   string
		labels map[string]string
		names  []string
		want   []string
	}{
		{"labels", labels, nil, []string{id1, id2}},
		{"one label", map[string]string{"fliswarm.test": run}, nil, []string{id1, id2, id3}},
		{"names", nil, []string{name3, name1}, []string{id1, id3}},
		{"labels or names", labels, []string{name3, name1}, []string{id1, id2, id3}},
		{"no such name", nil, []string{run}, nil},
		{"name prefix is not a match", nil, []string{run + "-on"}, nil},
	}
	for _, tt := range tests {
		t.Run("list "+tt.name, func(t *testing.T) {
			got, err := c.ListContainers(ctx, tt.labels, tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
				t.Errorf("ListContainers(%v, %v) = %v, want %v", tt.labels, tt.names, ids, tt.want)
			}
			brief, err := c.ListStates(ctx, tt.labels, tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			// The same containers, with the same name, state and image
			// (the list gives creation times to the second, so two
			// containers created in the same second may come in another
			// order).
			byID := map[string]Container{}
			for _, g := range got {
				byID[g.ID] = g
			}
			for _, b := range brief {
				if g, ok := byID[b.ID]; !ok || b.Name != g.Name || b.State != g.State || b.ImageID != g.ImageID {
					t.Errorf("ListStates(%v, %v) = %+v, want what ListContainers lists: %+v", tt.labels, tt.names, brief, got)
					break
				}
			}
			if len(brief) != len(got) {
				t.Errorf("ListStates(%v, %v): %d containers, ListContainers %d", tt.labels, tt.names, len(brief), len(got))
			}
		})
	}

	if err := c.StartContainer(ctx, id1); err != nil {
		t.Fatal(err)
	}
	if err := c.StartContainer(ctx, id1); err != nil {
		t.Errorf("StartContainer of a running container: %v", err)
	}
	ctr, err = c.InspectContainer(ctx, name1)
	if err != nil {
		t.Fatal(err)
	}
	if !ctr.Running || ctr.State != "running" || ctr.Pid == 0 || ctr.StartedAt.IsZero() || ctr.StartedAt.Before(ctr.Created) {
		t.Errorf("InspectContainer after start = %+v", ctr)
	}
	list, err := c.ListContainers(ctx, nil, name1)
	if err != nil || len(list) != 1 || !list[0].Running || list[0].StartedAt != ctr.StartedAt {
		t.Errorf("ListContainers after start = %+v, %v", list, err)
	}
	if brief, err := c.ListStates(ctx, nil, name1); err != nil || len(brief) != 1 || !brief[0].Running || brief[0].State != "running" {
		t.Errorf("ListStates after start = %+v, %v", brief, err)
	}

	stop := 20
	if _, err := c.api.ContainerStop(ctx, id1, client.ContainerStopOptions{Timeout: &stop}); err != nil {
		t.Fatal(err)
	}
	ctr, err = c.InspectContainer(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	if ctr.Running || ctr.State != "exited" || ctr.ExitCode != 3 || ctr.FinishedAt.Before(ctr.StartedAt) {
		t.Errorf("InspectContainer after stop = %+v (want exited with the program's status 3 on SIGTERM)", ctr)
	}

	// Removing: a running one needs force; a missing one is fine.
	if err := c.StartContainer(ctx, id2); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveContainer(ctx, id2, false); !IsConflict(err) {
		t.Errorf("RemoveContainer of a running container without force: %v, want a conflict", err)
	}
	for _, id := range []string{id1, id2, id3} {
		if err := c.RemoveContainer(ctx, id, true); err != nil {
			t.Errorf("RemoveContainer %s: %v", id, err)
		}
	}
	if err := c.RemoveContainer(ctx, id1, true); err != nil {
		t.Errorf("RemoveContainer of a removed container: %v, want nil", err)
	}
	if _, err := c.InspectContainer(ctx, id1); !IsNotFound(err) {
		t.Errorf("InspectContainer of a removed container: %v, want not found", err)
	}
	if list, err := c.ListContainers(ctx, map[string]string{"fliswarm.test": run}); err != nil || len(list) != 0 {
		t.Errorf("ListContainers after removal = %+v, %v", list, err)
	}
}

func TestEngineImages(t *testing.T) {
	c := testEngine(t)
	ensureTestImage(t, c)
	ctx := context.Background()

	img, err := c.InspectImage(ctx, testImage)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || !contains(img.RepoTags, testImage) {
		t.Errorf("InspectImage = %+v", img)
	}
	if byID, err := c.InspectImage(ctx, img.ID); err != nil || byID.ID != img.ID {
		t.Errorf("InspectImage by ID = %+v, %v", byID, err)
	}
	_, err = c.InspectImage(ctx, "fliswarm-engine-test:absent")
	if !IsNotFound(err) || !strings.HasPrefix(err.Error(), "testnode: inspect image fliswarm-engine-test:absent: ") {
		t.Errorf("InspectImage of a missing image: %v, want not found", err)
	}

	// A registry nobody serves: the engine answers, the pull fails, fast.
	start := time.Now()
	err = c.PullImage(ctx, "127.0.0.1:1/fliswarm/absent:latest", PullOptions{})
	took := time.Since(start)
	if err == nil {
		t.Fatal("PullImage from 127.0.0.1:1 succeeded")
	}
	if !strings.HasPrefix(err.Error(), "testnode: pull image 127.0.0.1:1/fliswarm/absent:latest: ") ||
		!strings.Contains(err.Error(), "127.0.0.1:1") || IsUnreachable(err) {
		t.Errorf("PullImage from 127.0.0.1:1: %v, want the engine's error about the registry", err)
	}
	if took > 60*time.Second {
		t.Errorf("PullImage from 127.0.0.1:1 took %s", took)
	}
	t.Logf("pull error after %s: %v", took.Round(time.Millisecond), err)
}

func TestEnginePullFromRegistry(t *testing.T) {
	registry := os.Getenv("FLISWARM_TEST_REGISTRY")
	if registry == "" {
		t.Skip("FLISWARM_TEST_REGISTRY is not set: no registry to pull from")
	}
	c := testEngine(t)
	ensureTestImage(t, c)
	ctx := context.Background()
	run := runID(t)
	ref := registry + "/fliswarm-engine-test:" + run
	removeTag := func() {
		_, _ = c.api.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{})
	}
	t.Cleanup(removeTag)

	local, err := c.InspectImage(ctx, testImage)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.api.ImageTag(ctx, client.ImageTagOptions{Source: testImage, Target: ref}); err != nil {
		t.Fatal(err)
	}
	// The engine wants an X-Registry-Auth header even for an anonymous
	// push: "{}" in base64.
	push, err := c.api.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	err = drainStream(push)
	_ = push.Close()
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	removeTag()
	if _, err := c.InspectImage(ctx, ref); !IsNotFound(err) {
		t.Fatalf("InspectImage after untag: %v, want not found", err)
	}

	if err := c.PullImage(ctx, ref, PullOptions{}); err != nil {
		t.Fatalf("PullImage %s: %v", ref, err)
	}
	pulled, err := c.InspectImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.ID != local.ID || !contains(pulled.RepoTags, ref) || len(pulled.RepoDigests) == 0 {
		t.Errorf("pulled image %+v, want the pushed one (%s) with a digest", pulled, local.ID)
	}
	// Pulling again is a no-op that succeeds.
	if err := c.PullImage(ctx, ref, PullOptions{}); err != nil {
		t.Errorf("second PullImage: %v", err)
	}

	missing := registry + "/fliswarm-engine-test:absent-" + run
	err = c.PullImage(ctx, missing, PullOptions{})
	if err == nil || IsUnreachable(err) || !strings.HasPrefix(err.Error(), "testnode: pull image "+missing+": ") {
		t.Errorf("PullImage of a missing tag: %v, want the registry's error", err)
	}
	t.Logf("missing tag: %v (IsNotFound %v)", err, IsNotFound(err))
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func TestEngineVolumes(t *testing.T) {
	c := testEngine(t)
	ensureTestImage(t, c)
	ctx := context.Background()
	run := runID(t)
	name := run + "-data"
	dir := t.TempDir()
	opts := map[string]string{"type": "none", "o": "bind", "device": dir}
	labels := map[string]string{"fliswarm.test": run}
	t.Cleanup(func() { _ = c.RemoveVolume(context.Background(), name, true) })

	if _, err := c.InspectVolume(ctx, name); !IsNotFound(err) {
		t.Fatalf("InspectVolume before create: %v, want not found", err)
	}
	v, err := c.CreateVolume(ctx, name, "local", opts, labels)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != name || v.Driver != "local" || v.Options["device"] != dir || v.Labels["fliswarm.test"] != run || v.Mountpoint == "" {
		t.Errorf("CreateVolume = %+v", v)
	}
	got, err := c.InspectVolume(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Options["o"] != "bind" || got.Labels["fliswarm.test"] != run {
		t.Errorf("InspectVolume = %+v", got)
	}
	// Creating it again returns the existing volume, options unchanged.
	again, err := c.CreateVolume(ctx, name, "local", map[string]string{"type": "tmpfs", "device": "tmpfs"}, nil)
	if err != nil {
		t.Fatalf("CreateVolume of an existing volume: %v", err)
	}
	if again.Options["device"] != dir {
		t.Errorf("CreateVolume of an existing volume = %+v, want the existing one", again)
	}

	// A volume in use cannot be removed.
	id, err := c.CreateContainer(ctx, run+"-user", &container.Config{Image: testImage, Labels: labels},
		&container.HostConfig{NetworkMode: "none", Binds: []string{name + ":/data"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.RemoveContainer(context.Background(), id, true) })
	if err := c.RemoveVolume(ctx, name, false); !IsConflict(err) {
		t.Errorf("RemoveVolume of a volume in use: %v, want a conflict", err)
	}
	if err := c.RemoveContainer(ctx, id, true); err != nil {
		t.Fatal(err)
	}

	if err := c.RemoveVolume(ctx, name, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InspectVolume(ctx, name); !IsNotFound(err) {
		t.Errorf("InspectVolume after remove: %v, want not found", err)
	}
	if err := c.RemoveVolume(ctx, name, false); err != nil {
		t.Errorf("RemoveVolume of a removed volume: %v, want nil", err)
	}
}

func TestEngineEvents(t *testing.T) {
	c := testEngine(t)
	ensureTestImage(t, c)
	run := runID(t)
	name := run + "-events"
	vol := run + "-vol"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, errc := c.Events(ctx)

	// The stream starts listening asynchronously; events of objects
	// created before it is up would be missed. Create a probe volume until
	// its event shows up, then do the real work.
	seen := map[string]Event{} // "type/action" of our objects
	probeDeadline := time.Now().Add(time.Minute)
	var probeSeen bool
	for i := 0; !probeSeen; i++ {
		if time.Now().After(probeDeadline) {
			t.Fatal("no event for the probe volume within a minute")
		}
		probe := run + "-probe" + strconv.Itoa(i)
		if _, err := c.CreateVolume(ctx, probe, "", nil, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.RemoveVolume(context.Background(), probe, true) })
		timeout := time.After(2 * time.Second)
	wait:
		for {
			select {
			case ev := <-evs:
				if ev.Type == "volume" && ev.Action == "create" && ev.Name == probe {
					probeSeen = true
					break wait
				}
			case err := <-errc:
				t.Fatalf("event stream ended: %v", err)
			case <-timeout:
				break wait
			}
		}
	}

	labels := map[string]string{"fliswarm.test": run}
	if _, err := c.CreateVolume(ctx, vol, "local", nil, nil); err != nil {
		t.Fatal(err)
	}
	id := createTestContainer(t, c, name, labels)
	if err := c.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveContainer(ctx, id, true); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveVolume(ctx, vol, false); err != nil {
		t.Fatal(err)
	}

	want := []string{"container/create", "container/start", "container/kill", "container/die", "container/destroy", "volume/create", "volume/destroy"}
	deadline := time.After(2 * time.Minute)
	for !hasAll(seen, want) {
		select {
		case ev := <-evs:
			if (ev.Type == "container" && ev.Name == name) || (ev.Type == "volume" && ev.Name == vol) {
				seen[ev.Type+"/"+ev.Action] = ev
			}
		case err := <-errc:
			t.Fatalf("event stream ended: %v", err)
		case <-deadline:
			t.Fatalf("after two minutes saw %v, want %v", keys(seen), want)
		}
	}
	for _, k := range []string{"container/create", "container/die", "container/destroy"} {
		ev := seen[k]
		if ev.ID != id || ev.Labels["fliswarm.test"] != run || ev.Time.IsZero() || ev.Attributes["image"] != testImage {
			t.Errorf("%s event = %+v", k, ev)
		}
		if _, ok := ev.Labels["name"]; ok {
			t.Errorf("%s event labels hold the name: %v", k, ev.Labels)
		}
	}
	if code := seen["container/die"].Attributes["exitCode"]; code != "137" {
		t.Errorf("die after a forced removal has exitCode %q, want 137", code)
	}

	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no error a minute after cancel")
	}
}

func hasAll(m map[string]Event, keys []string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

func keys(m map[string]Event) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
