package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

func testSpec() *v1.Swarm {
	s := &v1.Swarm{
		Registry:     "10.0.0.1:5000",
		Image:        "sdss/flicamera:latest",
		EnabledNodes: []string{"gfa1"},
		Nodes: map[string]v1.Node{
			"gfa1": {Host: "10.0.0.11", Port: 19995, DockerClient: "tcp://10.0.0.11:2375", Category: "gfa"},
		},
		Volumes: map[string]v1.Volume{
			"data": {Driver: "local", Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}},
		},
	}
	s.SetDefaults()
	return s
}

func desiredFor(t *testing.T, s *v1.Swarm) Desired {
	t.Helper()
	c, err := render.ForNode(s, "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	return Desired{Container: c, Volumes: render.Volumes(s), PullPolicy: s.PullPolicy}
}

// running returns the container that a previous reconcile of spec would
// have created.
func running(t *testing.T, s *v1.Swarm, id string) engine.Container {
	d := desiredFor(t, s)
	return engine.Container{
		ID: id, Name: d.Container.Name, Image: d.Container.Config.Image, ImageID: "sha256:img1",
		State: "running", Running: true, Labels: d.Container.Config.Labels,
	}
}

func volumes(s *v1.Swarm) map[string]engine.Volume {
	out := map[string]engine.Volume{}
	for _, v := range render.Volumes(s) {
		out[v.Name] = engine.Volume{Name: v.Name, Driver: v.Driver, Options: v.Opts, Labels: v.Labels}
	}
	return out
}

var img1 = &engine.Image{ID: "sha256:img1"}

type step struct {
	Type       v1.ActionType
	Target     string
	Disruptive bool
}

func steps(p Plan) []step {
	var out []step
	for _, a := range p.Actions {
		out = append(out, step{a.Type, a.Target, a.Disruptive})
	}
	return out
}

func TestPlanNode(t *testing.T) {
	base := testSpec()
	newImage := testSpec()
	newImage.Image = "sdss/flicamera:v2"
	newMem := testSpec()
	newMem.Resources.Memory = "4g"
	newVol := testSpec()
	newVol.Volumes["data"].Opts["device"] = "/srv/other"

	exited := running(t, base, "c1")
	exited.Running, exited.State, exited.ExitCode = false, "exited", 137
	foreign := running(t, base, "c1")
	foreign.Labels = nil
	stray := running(t, base, "c2")
	stray.Name = "flicamera-old"
	ifNotPresent := testSpec()
	ifNotPresent.PullPolicy = v1.PullIfNotPresent

	tests := []struct {
		name       string
		spec       *v1.Swarm
		have       Observed
		opts       PlanOptions
		want       []step
		wantReason string // a substring of the last action's reason
	}{
		{
			name: "cold start",
			spec: base,
			have: Observed{Volumes: map[string]engine.Volume{}},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionCreateVolume, "data", false},
				{ActionCreateContainer, "flicamera-gfa1", false},
			},
			wantReason: "no container",
		},
		{
			name: "converged: nothing to do",
			spec: base,
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
		},
		{
			name:       "exited container is started, not recreated or pulled",
			spec:       base,
			have:       Observed{Containers: []engine.Container{exited}, Volumes: volumes(base), Image: img1},
			want:       []step{{ActionStartContainer, "flicamera-gfa1", false}},
			wantReason: "exited (exit code 137)",
		},
		{
			name: "image tag changed: pull first, then a disruptive recreate",
			spec: newImage,
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: &engine.Image{ID: "sha256:img2"}},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:v2", false},
				{ActionRecreateContainer, "flicamera-gfa1", true},
			},
			wantReason: "image 10.0.0.1:5000/sdss/flicamera:latest → 10.0.0.1:5000/sdss/flicamera:v2",
		},
		{
			name: "resources changed: the reason names the field",
			spec: newMem,
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRecreateContainer, "flicamera-gfa1", true},
			},
			wantReason: "memoryBytes 6442450944 → 4294967296",
		},
		{
			name: "same tag, new image ID on the node",
			spec: base,
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: &engine.Image{ID: "sha256:img2"}},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRecreateContainer, "flicamera-gfa1", true},
			},
			wantReason: "image changed: img1 → img2",
		},
		{
			name: "image removed under a running current container: pull only",
			spec: base,
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base)},
			want: []step{{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false}},
		},
		{
			name: "volume options changed: container removed before the volume, pulled before both",
			spec: newVol,
			have: Observed{Containers: []engine.Container{running(t, newVol, "c1")}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRemoveContainer, "flicamera-gfa1", true},
				{ActionRemoveVolume, "data", false},
				{ActionCreateVolume, "data", false},
				{ActionCreateContainer, "flicamera-gfa1", false},
			},
			wantReason: `option device "/srv/data" → "/srv/other"`,
		},
		{
			name: "force recreates volumes and container",
			spec: base,
			opts: PlanOptions{Force: true},
			have: Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRemoveContainer, "flicamera-gfa1", true},
				{ActionRemoveVolume, "data", false},
				{ActionCreateVolume, "data", false},
				{ActionCreateContainer, "flicamera-gfa1", false},
			},
			wantReason: "forced",
		},
		{
			name: "container of the original fliswarm (no labels) is replaced",
			spec: base,
			have: Observed{Containers: []engine.Container{foreign}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRecreateContainer, "flicamera-gfa1", true},
			},
			wantReason: "not created by fliswarm",
		},
		{
			name:       "stray managed container removed, current one kept",
			spec:       base,
			have:       Observed{Containers: []engine.Container{stray, running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
			want:       []step{{ActionRemoveContainer, "flicamera-old", false}},
			wantReason: "stray managed container flicamera-old",
		},
		{
			name: "redeploy of a converged node: pull, then a disruptive recreate",
			spec: ifNotPresent,
			opts: PlanOptions{Redeploy: true},
			have: Observed{Containers: []engine.Container{running(t, ifNotPresent, "c1")}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRecreateContainer, "flicamera-gfa1", true},
			},
			wantReason: "redeploy requested",
		},
		{
			name:       "redeploy once pulled: the recreate only",
			spec:       base,
			opts:       PlanOptions{Redeploy: true, Pulled: true},
			have:       Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
			want:       []step{{ActionRecreateContainer, "flicamera-gfa1", true}},
			wantReason: "redeploy requested",
		},
		{
			name: "redeploy of a stopped camera recreates it rather than starting the old one",
			spec: base,
			opts: PlanOptions{Redeploy: true},
			have: Observed{Containers: []engine.Container{exited}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRecreateContainer, "flicamera-gfa1", false},
			},
			wantReason: "redeploy requested",
		},
		{
			name: "force pulls whatever the pull policy",
			spec: ifNotPresent,
			opts: PlanOptions{Force: true},
			have: Observed{Containers: []engine.Container{running(t, ifNotPresent, "c1")}, Volumes: volumes(base), Image: img1},
			want: []step{
				{ActionPullImage, "10.0.0.1:5000/sdss/flicamera:latest", false},
				{ActionRemoveContainer, "flicamera-gfa1", true},
				{ActionRemoveVolume, "data", false},
				{ActionCreateVolume, "data", false},
				{ActionCreateContainer, "flicamera-gfa1", false},
			},
			wantReason: "forced",
		},
		{
			name:       "if-not-present does not pull for a recreate",
			spec:       func() *v1.Swarm { s := testSpec(); s.PullPolicy = v1.PullIfNotPresent; s.Resources.CPUs = 2; return s }(),
			have:       Observed{Containers: []engine.Container{running(t, base, "c1")}, Volumes: volumes(base), Image: img1},
			want:       []step{{ActionRecreateContainer, "flicamera-gfa1", true}},
			wantReason: "cpuQuota 350000 → 200000",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanNode("gfa1", desiredFor(t, tc.spec), tc.have, tc.opts)
			if diff := cmp.Diff(tc.want, steps(p)); diff != "" {
				t.Fatalf("plan mismatch (-want +got):\n%s\nplan: %v", diff, p.Lines())
			}
			if tc.wantReason != "" {
				last := p.Actions[len(p.Actions)-1]
				if !strings.Contains(last.Reason, tc.wantReason) {
					t.Errorf("reason %q does not contain %q", last.Reason, tc.wantReason)
				}
			}
			if p.Empty() != (len(tc.want) == 0) {
				t.Errorf("Empty() = %v", p.Empty())
			}
		})
	}
}

// A plan never removes or recreates anything before the image is pulled:
// an unreachable registry must not take a running camera down.
func TestPlanPullsBeforeRemoving(t *testing.T) {
	s := testSpec()
	s.Image = "sdss/flicamera:v9"
	have := Observed{Containers: []engine.Container{running(t, testSpec(), "c1")}, Volumes: volumes(s)}
	p := PlanNode("gfa1", desiredFor(t, s), have, PlanOptions{Force: true})
	if len(p.Actions) == 0 || p.Actions[0].Type != ActionPullImage {
		t.Fatalf("first action is not the pull: %v", p.Lines())
	}
}

func TestPlanLines(t *testing.T) {
	if got := (Plan{}).Lines(); !cmp.Equal(got, []string{"nothing to do"}) {
		t.Errorf("empty plan lines = %v", got)
	}
}
