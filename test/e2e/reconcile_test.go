package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	fsengine "github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

// cameraStatus sends `status` to a node's camera over the JSON protocol
// and returns the final reply's code.
func cameraStatus(n testbed.Node) (string, error) {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.IP, "19995"), 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(clu.FormatCommand(7, "status")); err != nil {
		return "", err
	}
	buf := make([]byte, 0, 64*1024)
	tmp := make([]byte, 4096)
	for {
		k, err := conn.Read(tmp)
		if err != nil {
			return "", fmt.Errorf("reading: %w", err)
		}
		buf = append(buf, tmp[:k]...)
		for {
			i := strings.IndexByte(string(buf), '\n')
			if i < 0 {
				break
			}
			line := buf[:i]
			buf = buf[i+1:]
			r, err := clu.ParseReply(line)
			if err != nil || r.Header.CommandID != 7 {
				continue
			}
			if clu.IsTerminal(r.Header.MessageCode) {
				return r.Header.MessageCode, nil
			}
		}
	}
}

// TestReconcileColdStartThenNothingToDo: from nothing (no volume, no image,
// no container) one `fliswarm reconcile` brings every node a running,
// privileged camera with the original's mounts, env and labels; a second
// run changes nothing; --dry-run prints a plan and changes nothing.
func TestReconcileColdStartThenNothingToDo(t *testing.T) {
	bed := testbed.Ensure(t)
	resetBed(t, bed, true)
	e := newEnv(t, bed, nil)

	out, _, code := e.run(2*time.Minute, "reconcile", "--dry-run")
	if code != 0 {
		t.Fatalf("dry run exit %d", code)
	}
	for _, n := range bed.Nodes {
		for _, want := range []string{n.Name + ": pull-image", n.Name + ": create-volume data", n.Name + ": create-container flicamera-" + n.Name} {
			if !strings.Contains(out, want) {
				t.Errorf("dry run output lacks %q", want)
			}
		}
		if cs := managed(t, n); len(cs) != 0 {
			t.Fatalf("dry run created containers on %s", n.Name)
		}
	}

	start := time.Now()
	out, _, code = e.run(3*time.Minute, "reconcile")
	t.Logf("cold start of %d nodes took %s", len(bed.Nodes), time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("reconcile exit %d:\n%s", code, out)
	}
	ids := map[string]string{}
	for _, n := range bed.Nodes {
		if !strings.Contains(out, n.Name+": converged") {
			t.Errorf("no converged line for %s", n.Name)
		}
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Name] = c.ID
		checkContainer(t, bed, n, c)
		if code, err := cameraStatus(n); err != nil || code != ":" {
			t.Errorf("%s: camera status: code %q, err %v", n.Name, code, err)
		}
	}

	// Without a daemon, status observes every node once.
	out, _, code = e.run(time.Minute, "status", "--json")
	var st v1.DaemonStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v", code, err)
	}
	if st.Daemon.Running || len(st.Nodes) != len(bed.Nodes) {
		t.Errorf("status --json without a daemon: %s", mustJSON(st))
	}
	for _, n := range st.Nodes {
		if !n.Ready() || !n.Reachable || !n.DockerAlive || n.Container == nil || n.Container.ID != ids[n.Name] {
			t.Errorf("status of %s: %s", n.Name, mustJSON(n))
		}
	}

	out, _, code = e.run(2*time.Minute, "reconcile")
	if code != 0 {
		t.Fatalf("second reconcile exit %d", code)
	}
	for _, n := range bed.Nodes {
		if !strings.Contains(out, n.Name+": converged, container "+ids[n.Name][:12]+": nothing to do") {
			t.Errorf("second reconcile did something on %s:\n%s", n.Name, out)
		}
		c, err := runningContainer(t, n)
		if err != nil || c.ID != ids[n.Name] {
			t.Errorf("%s: container changed (%v, %s → %s)", n.Name, err, ids[n.Name], c.ID)
		}
	}
	out, _, _ = e.run(time.Minute, "reconcile", "--dry-run")
	if strings.Count(out, "nothing to do") != len(bed.Nodes) {
		t.Errorf("dry run after convergence:\n%s", out)
	}
}

// checkContainer verifies the container is exactly the original's.
func checkContainer(t *testing.T, bed *testbed.Bed, n testbed.Node, c fsengine.Container) {
	t.Helper()
	var inspect []struct {
		Config struct {
			Env    []string
			Image  string
			Labels map[string]string
		}
		HostConfig struct {
			Privileged  bool
			NetworkMode string
			CpuQuota    int64
			CpuPeriod   int64
			Memory      int64
			Devices     []struct{ PathOnHost, PathInContainer string }
		}
		Mounts []struct {
			Type, Name, Source, Destination string
		}
	}
	raw := bed.Docker(t, n.Name, "inspect", c.ID)
	if err := json.Unmarshal([]byte(raw), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("%s: inspect: %v", n.Name, err)
	}
	in := inspect[0]
	if c.Name != "flicamera-"+n.Name {
		t.Errorf("%s: name %q", n.Name, c.Name)
	}
	if in.Config.Image != bed.ImageRef {
		t.Errorf("%s: image %q, want %q", n.Name, in.Config.Image, bed.ImageRef)
	}
	if !in.HostConfig.Privileged || in.HostConfig.NetworkMode != "host" {
		t.Errorf("%s: privileged=%v network=%q", n.Name, in.HostConfig.Privileged, in.HostConfig.NetworkMode)
	}
	if in.HostConfig.CpuQuota != 350_000 || in.HostConfig.CpuPeriod != 100_000 || in.HostConfig.Memory != 6<<30 {
		t.Errorf("%s: cpu quota %d/%d memory %d", n.Name, in.HostConfig.CpuQuota, in.HostConfig.CpuPeriod, in.HostConfig.Memory)
	}
	for _, want := range []string{"ACTOR_NAME=" + n.Name, "OBSERVATORY=APO"} {
		if !slices.Contains(in.Config.Env, want) {
			t.Errorf("%s: env lacks %s: %v", n.Name, want, in.Config.Env)
		}
	}
	if in.Config.Labels[render.LabelManaged] != "true" || in.Config.Labels[render.LabelNode] != n.Name || in.Config.Labels[render.LabelSpecHash] == "" {
		t.Errorf("%s: labels %v", n.Name, in.Config.Labels)
	}
	var dataMount, usbMount bool
	for _, m := range in.Mounts {
		if m.Type == "volume" && m.Name == "data" && m.Destination == bed.DataDir {
			dataMount = true
		}
		if m.Type == "bind" && m.Source == "/dev/bus/usb" && m.Destination == "/dev/bus/usb" {
			usbMount = true
		}
	}
	if !dataMount || !usbMount {
		t.Errorf("%s: mounts %+v (data at %s: %v, /dev/bus/usb: %v)", n.Name, in.Mounts, bed.DataDir, dataMount, usbMount)
	}
	if len(in.HostConfig.Devices) != 1 || in.HostConfig.Devices[0].PathOnHost != "/dev/bus/usb" {
		t.Errorf("%s: devices %+v", n.Name, in.HostConfig.Devices)
	}
	// The image came from the bed's registry.
	tags := bed.Docker(t, n.Name, "image", "inspect", "--format", "{{json .RepoTags}}", bed.ImageRef)
	if !strings.Contains(tags, bed.ImageRef) {
		t.Errorf("%s: image tags %s", n.Name, tags)
	}
}

// converge brings the bed to the default spec with a one-shot reconcile.
func converge(t testing.TB, e *env) map[string]string {
	t.Helper()
	if out, _, code := e.run(3*time.Minute, "reconcile"); code != 0 {
		t.Fatalf("reconcile exit %d:\n%s", code, out)
	}
	ids := map[string]string{}
	for _, n := range e.bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Name] = c.ID
	}
	return ids
}

// waitAllReady waits until the daemon reports every node ready.
func waitAllReady(t testing.TB, e *env, timeout time.Duration) time.Duration {
	t.Helper()
	return e.eventually(timeout, "every node ready", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range e.bed.Nodes {
			if found, ready, _, _, lastErr := statusOf(st, n.Name); !found || !ready {
				return fmt.Errorf("%s not ready (%s)", n.Name, lastErr)
			}
		}
		return nil
	})
}

// runningDaemon converges the bed, starts the daemon and waits until it
// reports every node ready. It returns the env and the containers' ids.
func runningDaemon(t testing.TB, bed *testbed.Bed) (*env, map[string]string) {
	t.Helper()
	e := newEnv(t, bed, nil)
	ids := converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	return e, ids
}

// TestDaemonRestoresRemovedAndCrashedContainers: with the daemon running,
// `docker rm -f` of a camera's container and a kill -9 of its process are
// both undone within seconds.
func TestDaemonRestoresRemovedAndCrashedContainers(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)

	victim := bed.Nodes[0]
	bed.Docker(t, victim.Name, "rm", "-f", ids[victim.Name])
	took := e.eventually(30*time.Second, "removed container replaced", func() error {
		c, err := runningContainer(t, victim)
		if err != nil {
			return err
		}
		if c.ID == ids[victim.Name] {
			return fmt.Errorf("still the old container")
		}
		if _, err := cameraStatus(victim); err != nil {
			return err
		}
		return nil
	})
	t.Logf("docker rm -f on %s undone in %s", victim.Name, took.Round(time.Millisecond))

	crashed := bed.Nodes[1]
	before, err := runningContainer(t, crashed)
	if err != nil {
		t.Fatal(err)
	}
	bed.Crash(t, crashed.Name)
	took = e.eventually(30*time.Second, "crashed camera restarted", func() error {
		c, err := runningContainer(t, crashed)
		if err != nil {
			return err
		}
		if !c.StartedAt.After(before.StartedAt) {
			return fmt.Errorf("not restarted yet")
		}
		_, err = cameraStatus(crashed)
		return err
	})
	t.Logf("kill -9 on %s undone in %s", crashed.Name, took.Round(time.Millisecond))
	// The other node was never touched.
	third := bed.Nodes[2]
	if c, err := runningContainer(t, third); err != nil || c.ID != ids[third.Name] {
		t.Errorf("%s was disturbed: %v", third.Name, err)
	}

	// With the daemon running, `fliswarm reconcile` goes through it and
	// reports what it did.
	out, _, code := e.run(2*time.Minute, "reconcile", "--force", third.Name)
	c, err := runningContainer(t, third)
	if code != 0 || err != nil || c.ID == ids[third.Name] {
		t.Fatalf("forced reconcile through the daemon: exit %d, %v, container %s\n%s", code, err, c.ID, out)
	}
	if !strings.Contains(out, third.Name+": converged, container "+c.ID[:12]+": ") || !strings.Contains(out, "(forced)") {
		t.Errorf("forced reconcile output does not say what was done:\n%s", out)
	}
	out, _, code = e.run(time.Minute, "reconcile")
	if code != 0 || strings.Count(out, "nothing to do") != len(bed.Nodes) {
		t.Errorf("reconcile through the daemon after convergence: exit %d\n%s", code, out)
	}
}

// TestRestartingFliswarmRestartsNoCamera: stopping and starting the
// daemon adopts the running containers.
func TestRestartingFliswarmRestartsNoCamera(t *testing.T) {
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, nil)
	converge(t, e)
	before := map[string]fsengine.Container{}
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		before[n.Name] = c
	}
	for i := 0; i < 2; i++ {
		e.startDaemon()
		waitAllReady(t, e, time.Minute)
		e.stopDaemon()
	}
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != before[n.Name].ID || !c.StartedAt.Equal(before[n.Name].StartedAt) {
			t.Errorf("%s: camera restarted (id %s → %s, started %s → %s)", n.Name,
				before[n.Name].ID[:12], c.ID[:12], before[n.Name].StartedAt, c.StartedAt)
		}
	}
}

// TestRollingImageChange: a new image tag in the configuration is rolled
// out by the running daemon one node at a time: no two cameras are down
// at once (max_unavailable 1), judged from the engines' own events.
func TestRollingImageChange(t *testing.T) {
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)

	watch := watchRollout(t, bed)
	e.writeConfig(func(cfg map[string]any) { cfg["image"] = bed.ImageV2 })
	waitImage(t, e, bed, bed.ImageV2Ref, 3*time.Minute)
	waitAllReady(t, e, time.Minute)
	// The timeline: the pulls, all before the first camera goes down, then
	// one camera at a time.
	watch.check(t)
}

// TestPartitionedNodeDoesNotHoldUpOthers: a partitioned node is reported
// unreachable while the others converge, and converges once healed.
func TestPartitionedNodeDoesNotHoldUpOthers(t *testing.T) {
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, nil)
	converge(t, e)
	cut, other := bed.Nodes[1], bed.Nodes[0]
	// Remove cut's camera through its local socket, then cut it off.
	bed.Docker(t, cut.Name, "rm", "-f", "flicamera-"+cut.Name)
	bed.Partition(t, cut.Name)
	healed := false
	defer func() {
		if !healed {
			bed.Heal(t, cut.Name)
		}
	}()
	bed.Docker(t, other.Name, "rm", "-f", "flicamera-"+other.Name)

	// One-shot: the others converge, the command fails for cut only, and
	// in bounded time.
	start := time.Now()
	out, _, code := e.run(2*time.Minute, "reconcile", "--timeout", "20s")
	if code == 0 {
		t.Fatalf("reconcile with a partitioned node exited 0:\n%s", out)
	}
	if time.Since(start) > 90*time.Second {
		t.Errorf("reconcile took %s with a 20 s timeout", time.Since(start))
	}
	if !strings.Contains(out, cut.Name+": NOT converged") || !strings.Contains(out, other.Name+": converged") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if _, err := runningContainer(t, other); err != nil {
		t.Fatal(err)
	}

	e.startDaemon()
	e.eventually(time.Minute, "partitioned node reported unreachable", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		found, ready, reachable, docker, _ := statusOf(st, cut.Name)
		if !found || ready || reachable || docker {
			return fmt.Errorf("status of %s: found=%v ready=%v reachable=%v docker=%v", cut.Name, found, ready, reachable, docker)
		}
		return nil
	})
	bed.Heal(t, cut.Name)
	healed = true
	took := e.eventually(2*time.Minute, "healed node converges", func() error {
		_, err := runningContainer(t, cut)
		return err
	})
	t.Logf("%s converged %s after heal", cut.Name, took.Round(time.Millisecond))
	waitAllReady(t, e, time.Minute)
}

// TestStoppedEngineRecovers: a dead engine is reported (node pingable,
// Docker not answering) and the camera runs again after it restarts.
func TestStoppedEngineRecovers(t *testing.T) {
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)
	// A resync far away: the camera must come back because the engine's
	// event stream reconnected, not because of the resync.
	e.writeConfig(func(cfg map[string]any) { cfg["resync_interval"] = 120 })
	victim := bed.Nodes[2]
	bed.KillEngine(t, victim.Name)
	restarted := false
	defer func() {
		if !restarted {
			bed.StartEngine(t, victim.Name)
		}
	}()
	e.eventually(time.Minute, "dead engine reported", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		_, _, reachable, docker, lastErr := statusOf(st, victim.Name)
		if !reachable || docker {
			return fmt.Errorf("reachable=%v docker=%v (%s)", reachable, docker, lastErr)
		}
		return nil
	})
	bed.StartEngine(t, victim.Name)
	restarted = true
	took := e.eventually(2*time.Minute, "camera runs after the engine restarted", func() error {
		if _, err := runningContainer(t, victim); err != nil {
			return err
		}
		_, err := cameraStatus(victim)
		return err
	})
	t.Logf("%s running again %s after its engine restarted", victim.Name, took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("the camera came back %s after its engine, want within seconds (not at the resync)", took)
	}
	waitAllReady(t, e, time.Minute)
}

// TestRegistryDownLeavesCamerasRunning: a new image that cannot be pulled
// (registry down) never removes a running container; the node is
// reported degraded and converges once the registry is back.
func TestRegistryDownLeavesCamerasRunning(t *testing.T) {
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, nil)
	ids := converge(t, e)
	// Make sure no node has v2 yet, so the change needs a pull.
	for _, n := range bed.Nodes {
		_ = runDocker(n, "image", "rm", "-f", bed.ImageV2Ref)
	}
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	bed.StopRegistry(t)
	up := false
	defer func() {
		if !up {
			bed.StartRegistry(t)
		}
	}()
	e.writeConfig(func(cfg map[string]any) { cfg["image"] = bed.ImageV2 })
	e.eventually(time.Minute, "pull failures reported", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range bed.Nodes {
			_, _, _, _, lastErr := statusOf(st, n.Name)
			if !strings.Contains(lastErr, "pull-image") {
				return fmt.Errorf("%s: last error %q", n.Name, lastErr)
			}
		}
		return nil
	})
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil || c.ID != ids[n.Name] {
			t.Fatalf("%s: camera disturbed while the registry was down: %v", n.Name, err)
		}
	}
	bed.StartRegistry(t)
	up = true
	e.eventually(3*time.Minute, "rollout completes once the registry is back", func() error {
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if c.Image != bed.ImageV2Ref {
				return fmt.Errorf("%s runs %s", n.Name, c.Image)
			}
		}
		return nil
	})
}

// TestBadConfigEditLeavesCamerasUntouched: an invalid edit is rejected
// with every problem reported in status; nothing is changed.
func TestBadConfigEditLeavesCamerasUntouched(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)
	events := watchEvents(t, bed)
	good, _ := os.ReadFile(e.config)
	bad := strings.Replace(string(good), "container_name: flicamera", "container_name: flicamera\nbogus_key: 1\nping_timeout: fast", 1)
	if err := os.WriteFile(filepath.Join(e.dir, "fliswarm.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "bad edit reported", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		if !strings.Contains(st.Daemon.ConfigError, "bogus_key") || !strings.Contains(st.Daemon.ConfigError, "ping_timeout") {
			return fmt.Errorf("config error %q", st.Daemon.ConfigError)
		}
		return nil
	})
	// A whole reconcile pass of every node ran after the rejection: the
	// daemon had its chance to act on the edit. A pass observes, then
	// acts; a node observed twice since the rejection has finished the
	// first of those passes (resync_interval is 5 s on the bed).
	rejected := time.Now()
	first := map[string]time.Time{}
	e.eventually(30*time.Second, "a whole pass of every node after the rejection", func() error {
		for _, n := range bed.Nodes {
			at := nodeStatus(t, e, n.Name).ObservedAt
			if first[n.Name].IsZero() && at.After(rejected) {
				first[n.Name] = at
			}
			if f := first[n.Name]; f.IsZero() || !at.After(f) {
				return fmt.Errorf("%s last observed at %s", n.Name, at.Format(time.StampMilli))
			}
		}
		return nil
	})
	events.sync(t, bed)
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil || c.ID != ids[n.Name] {
			t.Fatalf("%s: camera disturbed by a bad edit: %v", n.Name, err)
		}
		if k := events.anyOf(n.Name, "kill", "die", "stop", "destroy", "rename"); k > 0 {
			t.Errorf("%s: camera disturbed by a bad edit: events %v", n.Name, events.actions(n.Name))
		}
	}
	out, _, code := e.run(30*time.Second, "status")
	if code != 0 || !strings.Contains(out, "configuration edit rejected") {
		t.Errorf("status exit %d:\n%s", code, out)
	}
}

func runDocker(n testbed.Node, args ...string) error {
	return dockerCLI(n.DockerHost, args...).Run()
}

// waitImage waits until every node of the bed runs a camera of image ref.
func waitImage(t testing.TB, e *env, bed *testbed.Bed, ref string, timeout time.Duration) {
	t.Helper()
	e.eventually(timeout, "every node runs "+ref, func() error {
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if c.Image != ref {
				return fmt.Errorf("%s still runs %s", n.Name, c.Image)
			}
		}
		return nil
	})
}
