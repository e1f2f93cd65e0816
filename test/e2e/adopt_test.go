package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-units"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

// originalRun is the docker run that the Python fliswarm's
// Node.run_container amounts to for node under spec: --rm, host network,
// privileged, memory and CPUs as a quota of a 10 ms period, each volume at
// its device path as -v, the USB bus bound and mapped, ACTOR_NAME and
// OBSERVATORY (and the bed's extra environment, which the bed's cameras
// need), the user when the node has one.
func originalRun(t *testing.T, spec *v1.Swarm, node, memory string) []string {
	t.Helper()
	args := []string{"run", "--rm", "-d", "--network", spec.NetworkMode, "--privileged",
		"--memory", memory, "--cpu-period", "10000",
		"--cpu-quota", strconv.FormatFloat(spec.Resources.CPUs*10000, 'f', 0, 64),
		"--name", spec.ContainerNameFor(node)}
	for _, name := range spec.VolumeNames() {
		args = append(args, "-v", name+":"+spec.Volumes[name].MountPath())
	}
	for _, d := range spec.Devices {
		args = append(args, "-v", d+":"+d, "--device", d)
	}
	env := []string{"ACTOR_NAME=" + node, "OBSERVATORY=" + spec.Observatory}
	for _, k := range sortedKeys(spec.Env) {
		env = append(env, k+"="+spec.Env[k])
	}
	for k, v := range spec.Nodes[node].Env {
		env = append(env, k+"="+v)
	}
	for _, kv := range env {
		args = append(args, "-e", kv)
	}
	if n := spec.Nodes[node]; n.DockerUID != nil {
		u := strconv.Itoa(*n.DockerUID)
		if n.DockerGID != nil {
			u += ":" + strconv.Itoa(*n.DockerGID)
		}
		args = append(args, "--user", u)
	}
	return append(args, spec.ImageRef())
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestAdoptsTheOriginalsCameras: cameras the Python fliswarm started (no
// fliswarm labels, --rm, CPUs as period 10000 quota 35000) are adopted by
// the first fliswarm start: the same containers, no create, start, die or
// destroy on their engines, status says adopted and talk reaches them. A
// node whose camera differs (--memory 4g) has it replaced, the reason
// naming the memory.
func TestAdoptsTheOriginalsCameras(t *testing.T) {
	bed := testbed.Ensure(t)
	resetBed(t, bed, false)
	e := newEnv(t, bed, nil)
	l, err := config.Load(config.Options{Path: e.config})
	if err != nil {
		t.Fatal(err)
	}
	spec := l.Spec
	mem, err := units.RAMInBytes(spec.Resources.Memory)
	if err != nil {
		t.Fatal(err)
	}
	differ := bed.Nodes[len(bed.Nodes)-1].Name
	var adopted []testbed.Node
	for _, n := range bed.Nodes {
		if n.Name != differ {
			adopted = append(adopted, n)
		}
	}

	events := watchEvents(t, bed)
	ids := map[string]string{}
	for _, n := range bed.Nodes {
		// The volumes as the original creates them (no labels).
		for _, name := range spec.VolumeNames() {
			v := spec.Volumes[name]
			args := []string{"volume", "create", "--driver", v.Driver}
			for _, k := range sortedKeys(v.Opts) {
				args = append(args, "--opt", k+"="+v.Opts[k])
			}
			bed.Docker(t, n.Name, append(args, name)...)
		}
		memory := strconv.FormatInt(mem>>20, 10) + "m"
		if n.Name == differ {
			memory = "4g"
		}
		ids[n.Name] = bed.Docker(t, n.Name, originalRun(t, spec, n.Name, memory)...)
	}
	// The event streams are up: each saw its docker run.
	e.eventually(30*time.Second, "the docker runs seen on the event streams", func() error {
		for _, n := range bed.Nodes {
			if events.count(n.Name, "create") != 1 || events.count(n.Name, "start") != 1 {
				return fmt.Errorf("%s: %d create, %d start events", n.Name, events.count(n.Name, "create"), events.count(n.Name, "start"))
			}
		}
		return nil
	})

	started := time.Now()
	e.startDaemon()
	waitAllReady(t, e, 2*time.Minute)
	// Two resyncs (resync_interval 5 s) pass over every node.
	e.eventually(time.Minute, "two resyncs after the start", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.ObservedAt.Before(started.Add(2 * spec.ResyncInterval.D())) {
				return fmt.Errorf("%s last observed %s", n.Name, n.ObservedAt.Format(time.RFC3339Nano))
			}
		}
		return nil
	})

	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range adopted {
		for _, action := range []string{"create", "start", "die", "destroy", "kill"} {
			if c := events.count(n.Name, action); c != map[string]int{"create": 1, "start": 1}[action] {
				t.Errorf("%s: %d %s events on the camera (only the docker run's expected)", n.Name, c, action)
			}
		}
		id := bed.Docker(t, n.Name, "inspect", "-f", "{{.Id}}", spec.ContainerNameFor(n.Name))
		if id != ids[n.Name] {
			t.Errorf("%s: container %s, the original's was %s", n.Name, id, ids[n.Name])
		}
		ns := nodeOf(t, st, n.Name)
		if c := ns.Container; c == nil || c.ID != ids[n.Name] || !c.Adopted || !c.AutoRemove || ns.Restarts != 0 || !ns.DeviceConnected {
			t.Errorf("%s: status %s", n.Name, mustJSON(ns))
		}
	}
	adoptLog := regexp.MustCompile(`\tadopted\t\{"node": "([a-z0-9]+)"`)
	var logged []string
	for _, m := range adoptLog.FindAllStringSubmatch(e.log(), -1) {
		logged = append(logged, m[1])
	}
	slices.Sort(logged)
	var want []string
	for _, n := range adopted {
		want = append(want, n.Name)
	}
	slices.Sort(want)
	if !slices.Equal(logged, want) {
		t.Errorf("adoptions logged for %v, want once for each of %v", logged, want)
	}

	// The node whose camera differs: replaced by fliswarm's own, the
	// reason naming the memory.
	ns := nodeOf(t, st, differ)
	ctr, err := runningContainer(t, bed.Node(t, differ))
	if err != nil {
		t.Fatal(err)
	}
	if ctr.ID == ids[differ] || ns.Container == nil || ns.Container.Adopted || ctr.Memory != mem {
		t.Errorf("%s: running %s with memory %d, status %s", differ, ctr.ID, ctr.Memory, mustJSON(ns))
	}
	memDiff := "memory 4g → " + strconv.FormatInt(mem>>30, 10) + "g"
	if !slices.ContainsFunc(ns.LastActions, func(a string) bool { return strings.Contains(a, memDiff) }) {
		t.Errorf("%s: last actions %q do not name %q", differ, ns.LastActions, memDiff)
	}
	if !strings.Contains(e.log(), memDiff) {
		t.Errorf("the daemon's log does not name %q", memDiff)
	}
	// Replaced: kept stopped as flicamera-<node>-previous until fliswarm's
	// own answers, then removed.
	if events.count(differ, "previous-destroy") != 1 || events.count(differ, "create") != 2 {
		t.Errorf("%s: %d destroy, %d create events: want the original's camera replaced once (%v)", differ,
			events.count(differ, "previous-destroy"), events.count(differ, "create"), events.events[differ])
	}

	// The actor: talk reaches the adopted cameras; status says adopted.
	c := dialActor(t, e)
	for _, n := range adopted {
		lines, final := send(t, c, "talk -n "+n.Name+" ping", time.Minute)
		if final.Code != opscore.Done || !strings.Contains(replyLines(lines), "Pong.") {
			t.Errorf("talk -n %s ping: %s\n%s", n.Name, final.Line, replyLines(lines))
		}
	}
	lines, final := send(t, c, "status", time.Minute)
	out := replyLines(lines)
	for _, n := range adopted {
		if final.Code != opscore.Done || !strings.Contains(out, fmt.Sprintf("container=%s,%s", n.Name, ids[n.Name][:12])) ||
			!strings.Contains(out, n.Name+": container "+ids[n.Name][:12]+" was not created by fliswarm") {
			t.Errorf("status does not show %s's adopted container:\n%s", n.Name, out)
		}
	}
	// Still no restart of the adopted cameras.
	for _, n := range adopted {
		if events.count(n.Name, "start") != 1 || events.count(n.Name, "destroy") != 0 {
			t.Errorf("%s: restarted after all: %d start, %d destroy events", n.Name, events.count(n.Name, "start"), events.count(n.Name, "destroy"))
		}
	}

	// An adopted camera that exits is gone (--rm): fliswarm creates its own
	// at once, and it answers.
	victim := adopted[0]
	bed.Docker(t, victim.Name, "kill", spec.ContainerNameFor(victim.Name))
	took := e.eventually(time.Minute, victim.Name+": fliswarm's own camera answers", func() error {
		ctr, err := runningContainer(t, victim)
		if err != nil {
			return err
		}
		ns := nodeStatus(t, e, victim.Name)
		if ctr.Labels[render.LabelManaged] != "true" || ns.Container == nil || ns.Container.ID != ctr.ID ||
			ns.Container.Adopted || !ns.Ready() || !ns.DeviceConnected {
			return fmt.Errorf("running %s, status %s", ctr.ID, mustJSON(ns))
		}
		return nil
	})
	t.Logf("%s: the adopted camera killed, fliswarm's own answers %s later", victim.Name, took.Round(time.Millisecond))
}

func nodeOf(t *testing.T, st v1.DaemonStatus, node string) v1.NodeStatus {
	t.Helper()
	for _, n := range st.Nodes {
		if n.Name == node {
			return n
		}
	}
	t.Fatalf("%s not in status", node)
	return v1.NodeStatus{}
}
