package actor

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/opscore"
)

func TestSelectNodes(t *testing.T) {
	spec := testSpec(map[string]int{})
	enabled := []string{"gfa1", "gfa2", "fvc"}
	for _, tc := range []struct {
		name, names, category string
		enabled               []string
		want, warnings        []string
	}{
		{name: "all by default", want: enabled},
		{name: "names", names: "fvc, gfa1", want: []string{"gfa1", "fvc"}},
		{name: "category", category: "gfa", want: []string{"gfa1", "gfa2"}},
		{name: "union", names: "fvc", category: "gfa", want: enabled},
		{name: "unknown name", names: "gfa1,gfa9", want: []string{"gfa1"}, warnings: []string{"Cannot find node gfa9."}},
		{name: "disabled name", names: "gfa2", enabled: []string{"gfa1"}, warnings: []string{"Node gfa2 is disabled."}},
		{name: "empty category", category: "ccd", warnings: []string{"No enabled node in category ccd."}},
		{name: "commas only", names: ",,", want: enabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en := enabled
			if tc.enabled != nil {
				en = tc.enabled
			}
			got, warnings := selectNodes(spec, en, tc.names, tc.category)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func render(lines []line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = stripHeader(opscore.FormatReply(1, 1, l.Code, l.Keywords...))
	}
	return out
}

func TestNodeStatusLines(t *testing.T) {
	spec := testSpec(map[string]int{})
	spec.Volumes["home"] = v1.Volume{Driver: "local", Opts: map[string]string{"device": ":/home"}}
	now := time.Now()
	healthy := v1.NodeStatus{
		Name: "gfa1", Host: "sdss-gfa1", DockerHost: "tcp://sdss-gfa1:2375",
		Reachable: true, DockerAlive: true, ObservedAt: now,
		Container: &v1.ContainerStatus{ID: "abcdef0123456789", State: "running", Count: 1},
		Volumes: []v1.VolumeStatus{
			{Name: "data", Exists: true, Device: ":/data"},
			{Name: "home", Exists: true},
		},
	}
	mod := func(f func(*v1.NodeStatus)) v1.NodeStatus {
		st := healthy
		st.Container = &v1.ContainerStatus{}
		*st.Container = *healthy.Container
		f(&st)
		return st
	}
	for _, tc := range []struct {
		name string
		st   v1.NodeStatus
		want []string
	}{
		{"healthy", healthy, []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			"d container=gfa1,abcdef012345",
			"d volume=gfa1,data,T,:/data",
			"d volume=gfa1,home,T,NA",
		}},
		{"adopted container", mod(func(s *v1.NodeStatus) { s.Container.Adopted = true }), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			"d container=gfa1,abcdef012345",
			`d text="gfa1: container abcdef012345 was not created by fliswarm; it runs the spec and was adopted."`,
			"d volume=gfa1,data,T,:/data",
			"d volume=gfa1,home,T,NA",
		}},
		{"never observed", v1.NodeStatus{Name: "gfa1"}, []string{
			`w text="Node 127.0.0.1 has not been checked yet."`,
			"i node=gfa1,127.0.0.1,tcp://10.0.0.1:2375,F,F",
		}},
		{"docker dead", mod(func(s *v1.NodeStatus) { s.DockerAlive = false }), []string{
			`w text="Docker client on node sdss-gfa1 is not connected."`,
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,F",
		}},
		{"no ping, docker alive", mod(func(s *v1.NodeStatus) { s.Reachable = false; s.Volumes = nil }), []string{
			`w text="Node sdss-gfa1 is not pinging back."`,
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,F,T",
			"d container=gfa1,abcdef012345",
			`w text="Volume data not present in gfa1."`,
			"d volume=gfa1,data,F,NA",
			`w text="Volume home not present in gfa1."`,
			"d volume=gfa1,home,F,NA",
		}},
		{"no container", mod(func(s *v1.NodeStatus) { s.Container = nil; s.Volumes = s.Volumes[:1] }), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			`w text="No containers running on sdss-gfa1."`,
			"d container=gfa1,NA",
			"d volume=gfa1,data,T,:/data",
			`w text="Volume home not present in gfa1."`,
			"d volume=gfa1,home,F,NA",
		}},
		{"exited container", mod(func(s *v1.NodeStatus) { s.Container.State = "exited" }), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			`w text="No containers running on sdss-gfa1."`,
			"d container=gfa1,NA",
			"d volume=gfa1,data,T,:/data",
			"d volume=gfa1,home,T,NA",
		}},
		{"several containers", mod(func(s *v1.NodeStatus) { s.Container.Count = 2 }), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			`w text="Multiple containers with image sdss-hub:5000/sdss5/flicamera running on node sdss-gfa1."`,
			"d container=gfa1,NA",
			"d volume=gfa1,data,T,:/data",
			"d volume=gfa1,home,T,NA",
		}},
		{"image update waiting", mod(func(s *v1.NodeStatus) {
			s.Volumes = s.Volumes[:1]
			s.Image = v1.ImageStatus{Ref: "sdss5/flicamera:latest", Digest: "sha256:aaaaaaaaaaaa0000", LatestDigest: "sha256:bbbbbbbbbbbb1111", UpdateWaiting: true}
		}), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			"d container=gfa1,abcdef012345",
			"d volume=gfa1,data,T,:/data",
			`w text="Volume home not present in gfa1."`,
			"d volume=gfa1,home,F,NA",
			`i text="Node gfa1 runs sha256:aaaaaaaaaaaa; sdss5/flicamera:latest is sha256:bbbbbbbbbbbb at the registry (update waiting)."`,
		}},
		{"registry down", mod(func(s *v1.NodeStatus) {
			s.Volumes = s.Volumes[:1]
			s.Image = v1.ImageStatus{Ref: "sdss5/flicamera:latest", Digest: "sha256:aaaaaaaaaaaa0000", LatestDigest: "sha256:aaaaaaaaaaaa0000", RegistryError: "connection refused"}
		}), []string{
			"i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T",
			"d container=gfa1,abcdef012345",
			"d volume=gfa1,data,T,:/data",
			`w text="Volume home not present in gfa1."`,
			"d volume=gfa1,home,F,NA",
			`w text="Cannot read the digest of sdss5/flicamera:latest from the registry: connection refused."`,
			`i text="Node gfa1 runs sha256:aaaaaaaaaaaa; sdss5/flicamera:latest is sha256:aaaaaaaaaaaa at the registry (up to date)."`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, render(nodeStatusLines(spec, tc.st))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBaseImage(t *testing.T) {
	for _, tc := range []struct{ registry, image, want string }{
		{"", "sdss5/flicamera:latest", "sdss5/flicamera"},
		{"hub:5000", "flicamera", "hub:5000/flicamera"},
		{"hub:5000", "sdss5/flicamera:1.2", "hub:5000/sdss5/flicamera"},
	} {
		s := &v1.Swarm{Registry: tc.registry, Image: tc.image}
		if got := baseImage(s); got != tc.want {
			t.Errorf("baseImage(%q, %q) = %q, want %q", tc.registry, tc.image, got, tc.want)
		}
	}
}

func TestFilenameOf(t *testing.T) {
	for _, tc := range []struct {
		data string
		want string
		ok   bool
	}{
		{`{"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}`, "/data/x.fits", true},
		{`{"filename": ["gfa1n", "/data/y.fits"]}`, "/data/y.fits", true},
		{`{"filename": "/data/z.fits"}`, "/data/z.fits", true},
		{`{"filename": []}`, "", false},
		{`{"filename": 3}`, "", false},
		{`{"status": "x"}`, "", false},
	} {
		line := `{"header": {"command_id": 1, "message_code": "i", "sender": "gfa1"}, "data": ` + tc.data + `}`
		r, err := clu.ParseReply([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := filenameOf(r)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %q %v, want %q %v", tc.data, got, ok, tc.want, tc.ok)
		}
	}
}

// The relayed filename keeps the dictionary's order: node, camera, path.
func TestRelayedFilename(t *testing.T) {
	r, err := clu.ParseReply([]byte(`{"header": {"command_id": 1, "message_code": ":", "sender": "gfa1"}, "data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"i filename=gfa1,gfa1n,/data/x.fits"}, render(relayLines(r))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
