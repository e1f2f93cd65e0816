package v1

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unsetenv(t *testing.T, key string) {
	t.Helper()
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}

func intp(i int) *int { return &i }

// valid is a defaulted spec that passes Validate.
func valid() *Swarm {
	s := &Swarm{
		Registry:     "sdss-hub:5000",
		Image:        "sdss5/flicamera:latest",
		EnabledNodes: []string{"gfa1", "fvc"},
		Nodes: map[string]Node{
			"gfa1": {Host: "sdss-gfa1", Port: 19995, DockerClient: "tcp://sdss-gfa1:2375", Category: "gfa"},
			"gfa2": {Host: "sdss-gfa2", Port: 19995, DockerClient: "unix:///var/run/docker.sock", Category: "gfa"},
			"fvc": {Host: "sdss-fvc", Port: 19995, DockerClient: "tcp://10.0.0.3:2375", Category: "fvc",
				DockerUID: intp(2005), DockerGID: intp(3005)},
		},
		Volumes: map[string]Volume{
			"data": {Opts: map[string]string{"type": "nfs", "o": "nfsvers=4,addr=sdss-hub,rw", "device": ":/data"}},
			"logs": {Opts: map[string]string{"type": "none", "o": "bind", "device": "/var/log/cam"}},
		},
		Env: map[string]string{"FOO": "bar"},
	}
	s.SetDefaults()
	return s
}

func paths(l ErrorList) []string {
	var out []string
	for _, e := range l {
		out = append(out, e.Path)
	}
	sort.Strings(out)
	return out
}

func TestValidateAcceptsValidSpec(t *testing.T) {
	if errs := valid().Validate(DefaultPaths); len(errs) != 0 {
		t.Fatalf("valid spec rejected:\n%v", errs)
	}
}

func TestValidateRules(t *testing.T) {
	perObs := Paths{Nodes: "nodes.LCO", EnabledNodes: "enabled_nodes.LCO"}
	tests := []struct {
		name    string
		paths   Paths
		mutate  func(s *Swarm)
		want    []string // paths of the problems, sorted
		message string   // a fragment of the first problem's message
	}{
		{"image missing", DefaultPaths, func(s *Swarm) { s.Image = "" }, []string{"image"}, "is required"},
		{"registry with slash", DefaultPaths, func(s *Swarm) { s.Registry = "http://reg" }, []string{"registry"}, "host[:port]"},
		{"registry with space", DefaultPaths, func(s *Swarm) { s.Registry = "reg 1" }, []string{"registry"}, "host[:port]"},
		{"container name with colon", DefaultPaths, func(s *Swarm) { s.ContainerName = "a:b" }, []string{"container_name"}, "plain name"},
		{"ping timeout zero", DefaultPaths, func(s *Swarm) { s.PingTimeout = 0 }, []string{"ping_timeout"}, "positive"},
		{"ping timeout negative", DefaultPaths, func(s *Swarm) { s.PingTimeout = Seconds(-1) }, []string{"ping_timeout"}, "positive"},
		{"observatory", DefaultPaths, func(s *Swarm) { s.Observatory = "KPNO" }, []string{"observatory"}, `"KPNO"`},
		{"actor port", DefaultPaths, func(s *Swarm) { s.Actor.Port = 70000 }, []string{"actor.port"}, "70000"},
		{"tron port", DefaultPaths, func(s *Swarm) { s.Actor.TronPort = -1 }, []string{"actor.tron_port"}, "-1"},
		{"enabled node undefined", DefaultPaths, func(s *Swarm) { s.EnabledNodes = append(s.EnabledNodes, "gfa9") },
			[]string{"enabled_nodes[2]"}, `"gfa9" is enabled but not defined in nodes`},
		{"enabled node undefined per observatory", perObs, func(s *Swarm) { s.EnabledNodes = []string{"gfa9"} },
			[]string{"enabled_nodes.LCO[0]"}, "not defined in nodes.LCO"},
		{"enabled node twice", DefaultPaths, func(s *Swarm) { s.EnabledNodes = []string{"gfa1", "gfa1"} },
			[]string{"enabled_nodes[1]"}, "listed twice"},
		{"node name with comma", DefaultPaths, func(s *Swarm) { addNode(s, "a,b", 1) }, []string{"nodes.a,b"}, "may not contain"},
		{"node host missing", DefaultPaths, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.Host = "" }) },
			[]string{"nodes.gfa1.host"}, "is required"},
		{"node host missing per observatory", perObs, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.Host = "" }) },
			[]string{"nodes.LCO.gfa1.host"}, "is required"},
		{"node port zero", DefaultPaths, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.Port = 0 }) },
			[]string{"nodes.gfa1.port"}, "1-65535"},
		{"node port too big", DefaultPaths, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.Port = 65536 }) },
			[]string{"nodes.gfa1.port"}, "65536"},
		{"docker client missing", DefaultPaths, func(s *Swarm) { editNode(s, "fvc", func(n *Node) { n.DockerClient = "" }) },
			[]string{"nodes.fvc.docker-client"}, "is required"},
		{"docker client bad per observatory", perObs, func(s *Swarm) { editNode(s, "fvc", func(n *Node) { n.DockerClient = "http://x" }) },
			[]string{"nodes.LCO.fvc.docker-client"}, "not supported"},
		{"gid without uid", DefaultPaths, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.DockerGID = intp(5) }) },
			[]string{"nodes.gfa1.docker-gid"}, "needs docker-uid"},
		{"uid without gid is fine", DefaultPaths, func(s *Swarm) { editNode(s, "gfa1", func(n *Node) { n.DockerUID = intp(5) }) },
			nil, ""},
		{"duplicate port on one host", DefaultPaths, func(s *Swarm) { editNode(s, "gfa2", func(n *Node) { n.Host = "sdss-gfa1" }) },
			[]string{"nodes.gfa2.port"}, "also used by node gfa1"},
		{"same port on other hosts is fine", DefaultPaths, func(s *Swarm) {}, nil, ""},
		{"volume without device", DefaultPaths, func(s *Swarm) { delete(s.Volumes["data"].Opts, "device") },
			[]string{"volumes.data.opts.device"}, "is required"},
		{"volume relative device", DefaultPaths, func(s *Swarm) { s.Volumes["logs"].Opts["device"] = ":data" },
			[]string{"volumes.logs.opts.device"}, "absolute path"},
		{"negative cpus", DefaultPaths, func(s *Swarm) { s.Resources.CPUs = -1 }, []string{"resources.cpus"}, "negative"},
		{"bad memory", DefaultPaths, func(s *Swarm) { s.Resources.Memory = "lots" }, []string{"resources.memory"}, `"lots"`},
		{"relative device", DefaultPaths, func(s *Swarm) { s.Devices = []string{"/dev/bus/usb", "dev/ttyUSB0"} },
			[]string{"devices[1]"}, "absolute path"},
		{"pull policy", DefaultPaths, func(s *Swarm) { s.PullPolicy = "never" }, []string{"pull_policy"}, `"never"`},
		{"restart policy", DefaultPaths, func(s *Swarm) { s.RestartPolicy = "sometimes" }, []string{"restart_policy"}, `"sometimes"`},
		{"resync interval", DefaultPaths, func(s *Swarm) { s.ResyncInterval = Seconds(-1) }, []string{"resync_interval"}, "positive"},
		{"max unavailable", DefaultPaths, func(s *Swarm) { s.MaxUnavailable = -2 }, []string{"max_unavailable"}, "at least 1"},
		{"command timeout", DefaultPaths, func(s *Swarm) { s.CommandTimeout = Seconds(-3) }, []string{"command_timeout"}, "negative"},
		{"negative status interval disables it", DefaultPaths, func(s *Swarm) { s.StatusInterval = Seconds(-1) }, nil, ""},
		{"env sets ACTOR_NAME", DefaultPaths, func(s *Swarm) { s.Env["ACTOR_NAME"] = "x" }, []string{"env.ACTOR_NAME"}, "set by fliswarm"},
		{"env sets OBSERVATORY", DefaultPaths, func(s *Swarm) { s.Env["OBSERVATORY"] = "x" }, []string{"env.OBSERVATORY"}, "set by fliswarm"},
		{"env name with =", DefaultPaths, func(s *Swarm) { s.Env["A=B"] = "x" }, []string{"env.A=B"}, "not a valid"},
		{"several problems at once", perObs, func(s *Swarm) {
			s.Image = ""
			s.EnabledNodes = []string{"gfa1", "nope"}
			editNode(s, "fvc", func(n *Node) { n.DockerClient = "tcp://sdss-fvc" })
			delete(s.Volumes["data"].Opts, "device")
		}, []string{"enabled_nodes.LCO[1]", "image", "nodes.LCO.fvc.docker-client", "volumes.data.opts.device"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.mutate(s)
			errs := s.Validate(tt.paths)
			if diff := cmp.Diff(tt.want, paths(errs)); diff != "" {
				t.Fatalf("problem paths (-want +got):\n%s\nall: %v", diff, errs)
			}
			if tt.message != "" && !strings.Contains(errs[0].Message, tt.message) {
				t.Errorf("message %q does not contain %q", errs[0].Message, tt.message)
			}
			if (errs.Err() == nil) != (len(tt.want) == 0) {
				t.Errorf("Err() = %v with %d problems", errs.Err(), len(errs))
			}
		})
	}
}

func addNode(s *Swarm, name string, port int) {
	s.Nodes[name] = Node{Host: "h-" + name, Port: port, DockerClient: "tcp://h:2375"}
}

func editNode(s *Swarm, name string, f func(*Node)) {
	n := s.Nodes[name]
	f(&n)
	s.Nodes[name] = n
}

func TestErrorListErrorIsSortedOneLinePerProblem(t *testing.T) {
	var l ErrorList
	l.Add("nodes.gfa2.port", "expected %s", "a port")
	l.Add("image", "is required")
	want := "image: is required\nnodes.gfa2.port: expected a port"
	if got := l.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (ErrorList{}).Err(); got != nil {
		t.Errorf("empty list Err() = %v, want nil", got)
	}
	if l[0].Path != "nodes.gfa2.port" {
		t.Errorf("Error() must not reorder the list itself, got %v", l)
	}
}

func TestValidateDockerHost(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string // "" for valid
	}{
		{"tcp://sdss-gfa1:2375", ""},
		{"tcp://10.213.0.11:2375", ""},
		{"tcp://10.213.0.11:2375/", ""},
		{"tcp://[::1]:2375", ""},
		{"unix:///var/run/docker.sock", ""},
		{"", "is required"},
		{"sdss-gfa1:2375", "not supported"},
		{"http://sdss-gfa1:2375", "not supported"},
		{"ssh://user@host", ""},
		{"ssh://root@10.213.0.13:2222/run/docker.sock", ""},
		{"ssh://host", ""},
		{"ssh://user:secret@host", "not supported"},
		{"ssh://user@host:0", "port number"},
		{"ssh://user@host?x=1", "unexpected query"},
		{"ssh://", "expected ssh://"},
		{"tcp://sdss-gfa1", "tcp://host:port"},
		{"tcp://:2375", "tcp://host:port"},
		{"tcp://host:port", "expected"},
		{"tcp://host:99x", "expected"},
		{"tcp://host:0", "port number"},
		{"tcp://host:70000", "port number"},
		{"tcp://host:2375/v1.41", "unexpected path"},
		{"unix://", "unix:///absolute/path"},
		{"unix://host/sock", "unix:///absolute/path"},
		{"tcp://host:2375\x7f", "expected"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := ValidateDockerHost(tt.addr)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateDockerHost(%q) = %v, want nil", tt.addr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateDockerHost(%q) = %v, want an error containing %q", tt.addr, err, tt.wantErr)
			}
		})
	}
}

func TestKubernetesHostnameMustBeALabelValue(t *testing.T) {
	for h, ok := range map[string]bool{"": true, "node-1.cluster": true, "10.213.0.11": true, "-x": false, "a b": false, strings.Repeat("a", 64): false} {
		s := valid()
		n := s.Nodes["gfa1"]
		n.KubernetesHostname = h
		s.Nodes["gfa1"] = n
		got := paths(s.Validate(DefaultPaths))
		if ok && len(got) != 0 || !ok && (len(got) != 1 || got[0] != "nodes.gfa1.kubernetes_hostname") {
			t.Errorf("kubernetes_hostname %q: problems at %v", h, got)
		}
	}
}
