package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func intp(i int) *int { return &i }

// spec is the documentation's example, defaulted, with an extra volume,
// extra environment and one node running as uid:gid.
func spec() *v1.Swarm {
	s := &v1.Swarm{
		Actor:        v1.Actor{TronHost: "sdss-hub", TronPort: 6093},
		Registry:     "sdss-hub:5000",
		Image:        "sdss5/flicamera:latest",
		EnabledNodes: []string{"gfa1", "gfa2", "fvc"},
		Nodes: map[string]v1.Node{
			"gfa1": {Host: "sdss-gfa1", Port: 19995, DockerClient: "tcp://sdss-gfa1:2375", Category: "gfa",
				DockerUID: intp(2005), DockerGID: intp(3005)},
			"gfa2": {Host: "sdss-gfa2", Port: 19995, DockerClient: "tcp://sdss-gfa2:2375", Category: "gfa",
				DockerUID: intp(2006)},
			"fvc": {Host: "sdss-fvc", Port: 19995, DockerClient: "tcp://sdss-fvc:2375", Category: "fvc"},
		},
		Volumes: map[string]v1.Volume{
			"data":  {Opts: map[string]string{"type": "nfs", "o": "nfsvers=4,addr=sdss-hub,rw", "device": ":/data"}},
			"calib": {Driver: "local", Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/calib"}},
		},
		Env: map[string]string{"ZED": "last", "LOG_LEVEL": "debug"},
	}
	s.SetDefaults()
	return s
}

func TestForNodeRendersEveryField(t *testing.T) {
	c, err := ForNode(spec(), "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	wantSummary := Summary{
		Image:         "sdss-hub:5000/sdss5/flicamera:latest",
		Env:           []string{"ACTOR_NAME=gfa1", "OBSERVATORY=APO", "LOG_LEVEL=debug", "ZED=last"},
		User:          "2005:3005",
		Privileged:    true,
		NetworkMode:   "host",
		Mounts:        []string{"volume:calib:/srv/calib", "volume:data:/data", "bind:/dev/bus/usb:/dev/bus/usb"},
		Devices:       []string{"/dev/bus/usb:/dev/bus/usb:rwm"},
		CPUQuota:      350_000,
		MemoryBytes:   6 << 30,
		RestartPolicy: "no",
	}
	specJSON, err := json.Marshal(wantSummary)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"name", c.Name, "flicamera-gfa1"},
		{"image", c.Config.Image, "sdss-hub:5000/sdss5/flicamera:latest"},
		{"env", c.Config.Env, wantSummary.Env},
		{"user", c.Config.User, "2005:3005"},
		{"labels", c.Config.Labels, map[string]string{
			LabelManaged:  "true",
			LabelNode:     "gfa1",
			LabelSpecHash: c.Hash,
			LabelSpec:     string(specJSON),
		}},
		{"privileged", c.HostConfig.Privileged, true},
		{"network mode", c.HostConfig.NetworkMode, container.NetworkMode("host")},
		{"restart policy", c.HostConfig.RestartPolicy, container.RestartPolicy{Name: "no"}},
		{"mounts", c.HostConfig.Mounts, []mount.Mount{
			{Type: mount.TypeVolume, Source: "calib", Target: "/srv/calib"},
			{Type: mount.TypeVolume, Source: "data", Target: "/data"},
			{Type: mount.TypeBind, Source: "/dev/bus/usb", Target: "/dev/bus/usb"},
		}},
		{"devices", c.HostConfig.Resources.Devices, []container.DeviceMapping{
			{PathOnHost: "/dev/bus/usb", PathInContainer: "/dev/bus/usb", CgroupPermissions: "rwm"},
		}},
		{"cpu quota", c.HostConfig.Resources.CPUQuota, int64(350_000)},
		{"cpu period", c.HostConfig.Resources.CPUPeriod, int64(100_000)},
		{"memory", c.HostConfig.Resources.Memory, int64(6 * 1024 * 1024 * 1024)},
		{"summary", c.Summary, wantSummary},
		{"hash", c.Hash, wantSummary.Hash()},
		{"hash length", len(c.Hash), 16},
		// Nothing else is asked of the engine.
		{"no published ports", len(c.HostConfig.PortBindings), 0},
		{"no binds", len(c.HostConfig.Binds), 0},
		{"no nano cpus beside the quota", c.HostConfig.Resources.NanoCPUs, int64(0)},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.field, diff)
			}
		})
	}
}

func TestForNodeVariants(t *testing.T) {
	tests := []struct {
		name  string
		node  string
		edit  func(s *v1.Swarm)
		check func(t *testing.T, c Container)
	}{
		{"Docker Hub when registry is empty", "fvc", func(s *v1.Swarm) { s.Registry = "" }, func(t *testing.T, c Container) {
			if c.Config.Image != "sdss5/flicamera:latest" || c.Summary.Image != c.Config.Image {
				t.Errorf("image = %q", c.Config.Image)
			}
		}},
		{"uid only", "gfa2", nil, func(t *testing.T, c Container) {
			if c.Config.User != "2006" {
				t.Errorf("user = %q, want 2006", c.Config.User)
			}
		}},
		{"no uid: image's user", "fvc", nil, func(t *testing.T, c Container) {
			if c.Config.User != "" || c.Summary.User != "" {
				t.Errorf("user = %q, want empty", c.Config.User)
			}
		}},
		{"a node's env merged over the global one", "fvc", func(s *v1.Swarm) {
			s.Env = map[string]string{"A": "global", "B": "global"}
			n := s.Nodes["fvc"]
			n.Env = map[string]string{"B": "fvc", "FLICAMERA_PORT": "19001"}
			s.Nodes["fvc"] = n
		}, func(t *testing.T, c Container) {
			want := []string{"ACTOR_NAME=fvc", "OBSERVATORY=APO", "A=global", "B=fvc", "FLICAMERA_PORT=19001"}
			if diff := cmp.Diff(want, c.Config.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		}},
		{"observatory and node name in env", "fvc", func(s *v1.Swarm) { s.Observatory = "LCO"; s.Env = nil }, func(t *testing.T, c Container) {
			if diff := cmp.Diff([]string{"ACTOR_NAME=fvc", "OBSERVATORY=LCO"}, c.Config.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		}},
		{"unprivileged, bridge, always", "fvc", func(s *v1.Swarm) {
			f := false
			s.Privileged, s.NetworkMode, s.RestartPolicy = &f, "bridge", "always"
		}, func(t *testing.T, c Container) {
			h := c.HostConfig
			if h.Privileged || h.NetworkMode != "bridge" || h.RestartPolicy.Name != container.RestartPolicyAlways {
				t.Errorf("privileged %v, network %q, restart %q", h.Privileged, h.NetworkMode, h.RestartPolicy.Name)
			}
		}},
		{"nil privileged means privileged", "fvc", func(s *v1.Swarm) { s.Privileged = nil }, func(t *testing.T, c Container) {
			if !c.HostConfig.Privileged {
				t.Error("not privileged")
			}
		}},
		{"several devices, no volumes", "fvc", func(s *v1.Swarm) {
			s.Devices = []string{"/dev/bus/usb", "/dev/ttyUSB0"}
			s.Volumes = nil
		}, func(t *testing.T, c Container) {
			want := []mount.Mount{
				{Type: mount.TypeBind, Source: "/dev/bus/usb", Target: "/dev/bus/usb"},
				{Type: mount.TypeBind, Source: "/dev/ttyUSB0", Target: "/dev/ttyUSB0"},
			}
			if diff := cmp.Diff(want, c.HostConfig.Mounts); diff != "" {
				t.Errorf("mounts (-want +got):\n%s", diff)
			}
			if len(c.HostConfig.Resources.Devices) != 2 || c.HostConfig.Resources.Devices[1].PathOnHost != "/dev/ttyUSB0" {
				t.Errorf("devices = %+v", c.HostConfig.Resources.Devices)
			}
		}},
		{"no devices", "fvc", func(s *v1.Swarm) { s.Devices = []string{} }, func(t *testing.T, c Container) {
			if len(c.HostConfig.Resources.Devices) != 0 || len(c.Summary.Devices) != 0 || c.Summary.Devices == nil {
				t.Errorf("devices = %+v, summary %#v", c.HostConfig.Resources.Devices, c.Summary.Devices)
			}
		}},
		{"limits", "fvc", func(s *v1.Swarm) { s.Resources = v1.Resources{CPUs: 0.25, Memory: "512m"} }, func(t *testing.T, c Container) {
			r := c.HostConfig.Resources
			if r.CPUQuota != 25_000 || r.Memory != 512<<20 {
				t.Errorf("CPUQuota %d, Memory %d", r.CPUQuota, r.Memory)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			if tt.edit != nil {
				tt.edit(s)
			}
			c, err := ForNode(s, tt.node)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestForNodeErrors(t *testing.T) {
	if _, err := ForNode(spec(), "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown node: err = %v", err)
	}
	s := spec()
	s.Resources.Memory = "lots"
	if _, err := ForNode(s, "fvc"); err == nil || !strings.Contains(err.Error(), "resources.memory") {
		t.Errorf("bad memory: err = %v", err)
	}
}

func TestHashStableAcrossCalls(t *testing.T) {
	first, err := ForNode(spec(), "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ { // map iteration order changes between calls
		c, err := ForNode(spec(), "gfa1")
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != first.Hash || c.Config.Labels[LabelSpec] != first.Config.Labels[LabelSpec] {
			t.Fatalf("call %d: hash %s, first %s", i, c.Hash, first.Hash)
		}
	}
}

func TestHashFollowsRenderedFieldsOnly(t *testing.T) {
	base, err := ForNode(spec(), "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(s *v1.Swarm)
		changes bool
	}{
		{"registry", func(s *v1.Swarm) { s.Registry = "other:5000" }, true},
		{"image tag", func(s *v1.Swarm) { s.Image = "sdss5/flicamera:1.0" }, true},
		{"observatory", func(s *v1.Swarm) { s.Observatory = "LCO" }, true},
		{"extra env value", func(s *v1.Swarm) { s.Env["LOG_LEVEL"] = "info" }, true},
		{"extra env added", func(s *v1.Swarm) { s.Env["NEW"] = "1" }, true},
		{"uid", func(s *v1.Swarm) { n := s.Nodes["gfa1"]; n.DockerUID = intp(1); s.Nodes["gfa1"] = n }, true},
		{"gid", func(s *v1.Swarm) { n := s.Nodes["gfa1"]; n.DockerGID = nil; s.Nodes["gfa1"] = n }, true},
		{"privileged", func(s *v1.Swarm) { f := false; s.Privileged = &f }, true},
		{"network mode", func(s *v1.Swarm) { s.NetworkMode = "bridge" }, true},
		{"volume device", func(s *v1.Swarm) { s.Volumes["data"].Opts["device"] = ":/data2" }, true},
		{"volume added", func(s *v1.Swarm) { s.Volumes["x"] = v1.Volume{Opts: map[string]string{"device": "/x"}} }, true},
		{"volume removed", func(s *v1.Swarm) { delete(s.Volumes, "calib") }, true},
		{"device added", func(s *v1.Swarm) { s.Devices = append(s.Devices, "/dev/ttyUSB0") }, true},
		{"cpus", func(s *v1.Swarm) { s.Resources.CPUs = 2 }, true},
		{"memory", func(s *v1.Swarm) { s.Resources.Memory = "4g" }, true},
		{"restart policy", func(s *v1.Swarm) { s.RestartPolicy = "unless-stopped" }, true},

		{"ping timeout", func(s *v1.Swarm) { s.PingTimeout = v1.Seconds(3) }, false},
		{"actor port", func(s *v1.Swarm) { s.Actor.Port = 1 }, false},
		{"tron host", func(s *v1.Swarm) { s.Actor.TronHost = "" }, false},
		{"node camera port", func(s *v1.Swarm) { n := s.Nodes["gfa1"]; n.Port = 1; s.Nodes["gfa1"] = n }, false},
		{"node category", func(s *v1.Swarm) { n := s.Nodes["gfa1"]; n.Category = "x"; s.Nodes["gfa1"] = n }, false},
		{"another node", func(s *v1.Swarm) { delete(s.Nodes, "fvc") }, false},
		{"enabled nodes", func(s *v1.Swarm) { s.EnabledNodes = s.EnabledNodes[:1] }, false},
		{"volume nfs options", func(s *v1.Swarm) { s.Volumes["data"].Opts["o"] = "ro" }, false},
		{"resync interval", func(s *v1.Swarm) { s.ResyncInterval = v1.Seconds(1) }, false},
		{"memory written differently", func(s *v1.Swarm) { s.Resources.Memory = "6144m" }, false},
		{"pull policy", func(s *v1.Swarm) { s.PullPolicy = v1.PullIfNotPresent }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			tt.edit(s)
			c, err := ForNode(s, "gfa1")
			if err != nil {
				t.Fatal(err)
			}
			if changed := c.Hash != base.Hash; changed != tt.changes {
				t.Errorf("hash changed = %v, want %v (summary %+v)", changed, tt.changes, c.Summary)
			}
			if c.Config.Labels[LabelSpecHash] != c.Hash {
				t.Errorf("label %s = %q, hash %q", LabelSpecHash, c.Config.Labels[LabelSpecHash], c.Hash)
			}
		})
	}
}

func TestHashDiffersPerNode(t *testing.T) {
	a, err := ForNode(spec(), "gfa2")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ForNode(spec(), "fvc")
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash == b.Hash {
		t.Errorf("gfa2 and fvc share hash %s", a.Hash)
	}
}

func TestSummaryOf(t *testing.T) {
	c, err := ForNode(spec(), "gfa1")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := SummaryOf(c.Config.Labels)
	if !ok {
		t.Fatal("SummaryOf found no summary on a rendered container")
	}
	if diff := cmp.Diff(c.Summary, got); diff != "" {
		t.Errorf("summary round trip (-want +got):\n%s", diff)
	}
	if got.Hash() != c.Hash {
		t.Errorf("hash of the read-back summary %s, rendered %s", got.Hash(), c.Hash)
	}

	for name, labels := range map[string]map[string]string{
		"no labels":     nil,
		"foreign":       {"maintainer": "someone"},
		"corrupt label": {LabelSpec: "{not json"},
	} {
		t.Run(name, func(t *testing.T) {
			if s, ok := SummaryOf(labels); ok {
				t.Errorf("SummaryOf = %+v, true; want false", s)
			}
		})
	}
}

func TestVolumes(t *testing.T) {
	s := spec()
	got := Volumes(s)
	want := []Volume{
		{Name: "calib", Driver: "local", Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/calib"},
			Labels: map[string]string{LabelManaged: "true"}},
		{Name: "data", Driver: "local", Opts: map[string]string{"type": "nfs", "o": "nfsvers=4,addr=sdss-hub,rw", "device": ":/data"},
			Labels: map[string]string{LabelManaged: "true"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Volumes (-want +got):\n%s", diff)
	}
	// The rendered options are a copy: changing them leaves the spec alone.
	got[1].Opts["device"] = "changed"
	if s.Volumes["data"].Opts["device"] != ":/data" {
		t.Error("Volumes shares its option map with the spec")
	}
	if v := Volumes(&v1.Swarm{}); len(v) != 0 {
		t.Errorf("Volumes of a spec without volumes = %+v", v)
	}
}
