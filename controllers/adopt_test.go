package controllers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// imgEnv is what the flicamera image sets by itself; the engine copies it
// into every container created from the image.
var (
	imgOwn = &engine.Image{ID: "sha256:img1", Env: []string{"PATH=/usr/bin", "LANG=C.UTF-8"}, User: "sdss",
		Volumes: []string{"/var/cache/flicamera"}}
	imgOther = &engine.Image{ID: "sha256:img0", Env: []string{"PATH=/usr/bin"}}
)

// original is the camera container of testSpec's gfa1 as the Python
// fliswarm's Node.run_container (or its docker run equivalent) leaves it,
// as the engine reports it.
func original(t *testing.T, s *v1.Swarm) engine.Container {
	d := desiredFor(t, s)
	return engine.Container{
		ID: "orig1", Name: d.Container.Name, Image: d.Container.Config.Image, ImageID: "sha256:img1",
		State: "running", Running: true, Labels: map[string]string{},
		Privileged: true, NetworkMode: "host",
		Env: []string{"ACTOR_NAME=gfa1", "OBSERVATORY=APO", "PATH=/usr/bin", "LANG=C.UTF-8"},
		Mounts: []engine.Mount{
			{Type: "volume", Name: "data", Source: "/var/lib/docker/volumes/data/_data", Target: "/srv/data"},
			{Type: "bind", Source: "/dev/bus/usb", Target: "/dev/bus/usb"},
		},
		Devices:   []engine.DeviceMapping{{PathOnHost: "/dev/bus/usb", PathInContainer: "/dev/bus/usb", CgroupPermissions: "rwm"}},
		CPUPeriod: 10000, CPUQuota: 35000, Memory: 6 << 30,
		AutoRemove: true, RestartPolicy: "no",
	}
}

func TestAdoptDiff(t *testing.T) {
	base := testSpec()
	withUser := testSpec()
	n := withUser.Nodes["gfa1"]
	uid, gid := 2005, 3005
	n.DockerUID, n.DockerGID = &uid, &gid
	withUser.Nodes["gfa1"] = n
	withEnv := testSpec()
	withEnv.Env = map[string]string{"LOG_LEVEL": "debug"}

	tests := []struct {
		name string
		spec *v1.Swarm
		edit func(c *engine.Container)
		img  *engine.Image // the spec's image on the node; imgOwn unless set
		own  *engine.Image // the image the container runs; nil unless set
		none bool          // the image is not on the node
		want []string
	}{
		{name: "as the original ran it", edit: nil},
		{name: "cpu as fliswarm writes it", edit: func(c *engine.Container) { c.CPUPeriod, c.CPUQuota = 100000, 350000 }},
		{name: "cpu as --cpus 3.5", edit: func(c *engine.Container) { c.CPUPeriod, c.CPUQuota, c.NanoCPUs = 0, 0, 3_500_000_000 }},
		{name: "cpu quota on the default period", edit: func(c *engine.Container) { c.CPUPeriod, c.CPUQuota = 0, 350000 }},
		{name: "cpu differs", edit: func(c *engine.Container) { c.CPUQuota = 20000 }, want: []string{"cpus 2 → 3.5"}},
		{name: "cpu unlimited", edit: func(c *engine.Container) { c.CPUPeriod, c.CPUQuota = 0, 0 }, want: []string{"cpus unlimited → 3.5"}},
		{name: "memory as 6144m", edit: func(c *engine.Container) { c.Memory = 6144 << 20 }},
		{name: "memory 4g", edit: func(c *engine.Container) { c.Memory = 4 << 30 }, want: []string{"memory 4g → 6g"}},
		{name: "memory 5000m", edit: func(c *engine.Container) { c.Memory = 5000 << 20 }, want: []string{"memory 5000m → 6g"}},
		{name: "memory unlimited", edit: func(c *engine.Container) { c.Memory = 0 }, want: []string{"memory unlimited → 6g"}},
		{name: "image by ID", edit: func(c *engine.Container) { c.Image = "sha256:img1" }},
		{name: "image by digest", edit: func(c *engine.Container) { c.Image = "10.0.0.1:5000/sdss/flicamera@sha256:d1" }},
		{name: "older image under the same name", img: imgOwn, own: imgOther,
			edit: func(c *engine.Container) { c.ImageID = "sha256:img0"; c.Env = c.Env[:3] },
			want: []string{"image 10.0.0.1:5000/sdss/flicamera:latest (img0) → 10.0.0.1:5000/sdss/flicamera:latest (img1)"}},
		{name: "image not on the node, same name", none: true, own: imgOwn},
		{name: "image not on the node, other name", none: true, own: imgOwn,
			edit: func(c *engine.Container) { c.Image = "sdss/flicamera:0.3" },
			want: []string{"image sdss/flicamera:0.3 → 10.0.0.1:5000/sdss/flicamera:latest"}},
		{name: "env without the image's", edit: func(c *engine.Container) { c.Env = c.Env[:2] }},
		{name: "env with an extra variable", edit: func(c *engine.Container) { c.Env = append(c.Env, "FOO=1") },
			want: []string{"env FOO extra"}},
		{name: "env overriding the image's", edit: func(c *engine.Container) { c.Env[2] = "PATH=/opt" },
			want: []string{"env PATH extra"}},
		{name: "env OBSERVATORY missing", edit: func(c *engine.Container) { c.Env = c.Env[:1] },
			want: []string{"env OBSERVATORY missing"}},
		{name: "env value differs", edit: func(c *engine.Container) { c.Env[0] = "ACTOR_NAME=gfa2" },
			want: []string{`env ACTOR_NAME "gfa2" → "gfa1"`}},
		{name: "env of the spec missing", spec: withEnv, want: []string{"env LOG_LEVEL missing"}},
		{name: "volume mounted elsewhere", edit: func(c *engine.Container) { c.Mounts[0].Target = "/data" },
			want: []string{"mount /srv/data missing (volume data)", "mount /data extra (volume data)"}},
		{name: "another volume at the target", edit: func(c *engine.Container) { c.Mounts[0].Name = "scratch" },
			want: []string{"mount /srv/data volume scratch → volume data"}},
		{name: "anonymous volume of the image", edit: func(c *engine.Container) {
			c.Mounts = append(c.Mounts, engine.Mount{Type: "volume", Name: "3f2a", Target: "/var/cache/flicamera"})
		}},
		{name: "extra bind", edit: func(c *engine.Container) {
			c.Mounts = append(c.Mounts, engine.Mount{Type: "bind", Source: "/tmp", Target: "/tmp"})
		}, want: []string{"mount /tmp extra (bind /tmp)"}},
		{name: "usb bind missing", edit: func(c *engine.Container) { c.Mounts = c.Mounts[:1] },
			want: []string{"mount /dev/bus/usb missing (bind /dev/bus/usb)"}},
		{name: "device mapping missing", edit: func(c *engine.Container) { c.Devices = nil },
			want: []string{"device /dev/bus/usb:/dev/bus/usb:rwm missing"}},
		{name: "device without permissions", edit: func(c *engine.Container) { c.Devices[0].CgroupPermissions = "" }},
		{name: "device read-only", edit: func(c *engine.Container) { c.Devices[0].CgroupPermissions = "r" },
			want: []string{"device /dev/bus/usb:/dev/bus/usb:rwm missing", "device /dev/bus/usb:/dev/bus/usb:r extra"}},
		{name: "not privileged", edit: func(c *engine.Container) { c.Privileged = false }, want: []string{"privileged false → true"}},
		{name: "bridge network", edit: func(c *engine.Container) { c.NetworkMode = "bridge" }, want: []string{"network bridge → host"}},
		{name: "user of the spec", spec: withUser, edit: func(c *engine.Container) { c.User = "2005:3005" }},
		{name: "user missing", spec: withUser, want: []string{`user "" → 2005:3005`}},
		{name: "image's user when the spec has none", edit: func(c *engine.Container) { c.User = "sdss" }},
		{name: "another user", edit: func(c *engine.Container) { c.User = "root" }, want: []string{`user root → ""`}},
		{name: "restart policy unset", edit: func(c *engine.Container) { c.RestartPolicy = "" }},
		{name: "restart policy always", edit: func(c *engine.Container) { c.RestartPolicy, c.AutoRemove = "always", false },
			want: []string{"restart policy always → no"}},
		{name: "without auto-remove", edit: func(c *engine.Container) { c.AutoRemove = false }},
		{name: "several differences, in order", edit: func(c *engine.Container) {
			c.Memory = 4 << 30
			c.Env = c.Env[:1]
			c.Privileged = false
		}, want: []string{"privileged false → true", "env OBSERVATORY missing", "memory 4g → 6g"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			if spec == nil {
				spec = base
			}
			c := original(t, spec)
			if tt.edit != nil {
				tt.edit(&c)
			}
			img := tt.img
			if img == nil && !tt.none {
				img = imgOwn
			}
			got := adoptDiff(desiredFor(t, spec).Container, c, img, tt.own)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("adoptDiff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanAdoptsTheOriginalsCamera(t *testing.T) {
	s := testSpec()
	d := desiredFor(t, s)
	have := Observed{Containers: []engine.Container{original(t, s)}, Volumes: volumes(s), Image: imgOwn}
	if p := PlanNode("gfa1", d, have, PlanOptions{}); !p.Empty() {
		t.Errorf("a camera that runs the spec is adopted, got plan %v", p.Lines())
	}

	have.Containers[0].Memory = 4 << 30
	p := PlanNode("gfa1", d, have, PlanOptions{})
	last := p.Actions[len(p.Actions)-1]
	if last.Type != ActionRecreateContainer || !last.Disruptive || !p.Disruptive() {
		t.Fatalf("a camera that differs is recreated (disruptive), got %v", p.Lines())
	}
	if r := last.Reason; !strings.Contains(r, "not created by fliswarm") || !strings.HasSuffix(r, ": memory 4g → 6g") {
		t.Errorf("reason %q does not name the memory difference", r)
	}
}
