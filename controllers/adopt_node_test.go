package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// foreignCamera is node's camera as the Python fliswarm ran it: no
// labels, --rm, CPUs as period 10000 quota 35000, volumes as -v, the
// image's own environment merged in by the engine.
func foreignCamera(t *testing.T, spec *v1.Swarm, node string) (engine.Container, engine.Image) {
	t.Helper()
	d, err := desired(spec, node)
	if err != nil {
		t.Fatal(err)
	}
	ref := d.Container.Config.Image
	sum := sha256.Sum256([]byte(ref)) // the fake engine's pull gives this ID
	img := engine.Image{ID: "sha256:" + hex.EncodeToString(sum[:]), RepoTags: []string{ref}, Env: []string{"PATH=/usr/bin"}}
	c := engine.Container{
		ID: "orig-" + node, Name: d.Container.Name, Image: ref, ImageID: img.ID, Labels: map[string]string{},
		Privileged: true, NetworkMode: "host", Env: append(slices.Clone(d.Container.Config.Env), img.Env...),
		CPUPeriod: 10000, CPUQuota: 35000, Memory: d.Container.Summary.MemoryBytes,
		AutoRemove: true, RestartPolicy: "no",
	}
	for _, m := range d.Container.HostConfig.Mounts {
		c.Mounts = append(c.Mounts, engine.Mount{Type: string(m.Type), Name: m.Source, Source: m.Source, Target: m.Target})
	}
	for _, dm := range d.Container.HostConfig.Resources.Devices {
		c.Devices = append(c.Devices, engine.DeviceMapping{PathOnHost: dm.PathOnHost, PathInContainer: dm.PathInContainer})
	}
	return c, img
}

func TestOriginalsCamerasAreAdoptedOrReplaced(t *testing.T) {
	spec := testSwarm("gfa1", "gfa2")
	h := newHarness(t, spec, "r1")
	for _, n := range []string{"gfa1", "gfa2"} {
		c, img := foreignCamera(t, spec, n)
		if n == "gfa2" {
			c.Memory = 4 << 30
		}
		e := h.eng(n)
		for _, v := range render.Volumes(spec) {
			e.volumes[v.Name] = engine.Volume{Name: v.Name, Driver: v.Driver, Options: v.Opts}
		}
		e.Run(c, img)
	}
	mark := len(h.w.opsSince(0))
	h.start()
	h.probed()
	h.requireReady("gfa1", "gfa2")

	opsOn := func(node string, since int) []string {
		var out []string
		for _, o := range h.w.opsSince(since) {
			if o.Node == node {
				out = append(out, o.String())
			}
		}
		return out
	}
	if ops := opsOn("gfa1", mark); len(ops) != 0 {
		t.Errorf("gfa1 runs the spec: nothing may change, got %v", ops)
	}
	st := h.status("gfa1")
	if st.Container == nil || st.Container.ID != "orig-gfa1" || !st.Container.Adopted || !st.Container.AutoRemove {
		t.Fatalf("gfa1: container %+v, want orig-gfa1 adopted, auto-remove", st.Container)
	}
	if st.Container.SpecHash != hashOf(t, spec, "gfa1") || !st.DeviceConnected {
		t.Errorf("gfa1: spec hash %q (want the spec's), camera connected %t", st.Container.SpecHash, st.DeviceConnected)
	}

	// gfa2 differs in memory: replaced, the reason naming it.
	if c := h.camera("gfa2"); c.Hash != hashOf(t, spec, "gfa2") || c.State != "running" {
		t.Errorf("gfa2: camera %+v, want fliswarm's own, running", c)
	}
	st2 := h.status("gfa2")
	if st2.Container.Adopted || !slices.ContainsFunc(st2.LastActions, func(a string) bool {
		return strings.Contains(a, "recreate-container") && strings.Contains(a, "memory 4g → 6g")
	}) {
		t.Errorf("gfa2: adopted %t, last actions %q: want a recreate naming memory 4g → 6g", st2.Container.Adopted, st2.LastActions)
	}
	if n := h.logCount(`"adopted"`); n != 1 {
		t.Errorf("%d adoption log lines, want 1 (gfa1 only)", n)
	}

	// Resyncs do not restart it, nor log it again.
	mark = len(h.w.opsSince(0))
	h.advance(3 * spec.ResyncInterval.D())
	if ops := opsOn("gfa1", mark); len(ops) != 0 {
		t.Errorf("after resyncs: %v on gfa1", ops)
	}
	if n := h.logCount(`"adopted"`); n != 1 {
		t.Errorf("%d adoption log lines after resyncs, want 1", n)
	}

	// It exits: --rm removes it, and fliswarm creates its own at once.
	h.eng("gfa1").Kill(spec.ContainerNameFor("gfa1"), 1)
	h.settle()
	if c := h.camera("gfa1"); c.Hash != hashOf(t, spec, "gfa1") || c.State != "running" {
		t.Fatalf("gfa1 after its adopted camera exited: camera %+v, want fliswarm's own running", c)
	}
	h.probed()
	h.requireReady("gfa1")
	if st := h.status("gfa1"); st.Container.Adopted || st.Container.ID == "orig-gfa1" {
		t.Errorf("gfa1: the replacement is reported as %+v", st.Container)
	}
}
