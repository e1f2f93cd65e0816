package config

import (
	"bytes"
	"errors"
	"github.com/sdss/fliswarm/test/testbed"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/config"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// unsetObservatory clears $OBSERVATORY for one test (restored after).
func unsetObservatory(t *testing.T) {
	t.Helper()
	t.Setenv("OBSERVATORY", "")
	if err := os.Unsetenv("OBSERVATORY"); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fliswarm.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(i int) *int    { return &i }
func boolp(b bool) *bool { return &b }

// problemPaths returns the sorted paths of every problem in a load error.
func problemPaths(t *testing.T, err error) []string {
	t.Helper()
	var list v1.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) carries no ErrorList", err, err)
	}
	var out []string
	for _, e := range list {
		out = append(out, e.Path)
	}
	sort.Strings(out)
	return out
}

const seedMarker = "# CLU-like actor configuration options"

// TestDocumentationSampleIsTheSeedExample holds config/samples/documentation.yaml
// to the original documentation's example, byte for byte, and loads it.
func TestDocumentationSampleIsTheSeedExample(t *testing.T) {
	unsetObservatory(t)
	sample := filepath.Join(repoRoot(t), "config", "samples", "documentation.yaml")
	got, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("testdata", "fliswarm-docs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(doc, []byte(seedMarker))
	if i < 0 {
		t.Fatalf("testdata/fliswarm-docs.txt has no line %q", seedMarker)
	}
	if want := doc[i:]; !bytes.Equal(got, want) {
		t.Errorf("%s (%d bytes) differs from the documentation's example (%d bytes)\n%s",
			sample, len(got), len(want), cmp.Diff(string(want), string(got)))
	}
	l, err := Load(Options{Path: sample})
	if err != nil {
		t.Fatal(err)
	}
	want := &v1.Swarm{
		Actor: v1.Actor{Name: "fliswarm", Host: "127.0.0.1", Port: 19996, TronHost: "sdss-hub", TronPort: 6093,
			LogDir: "/data/logs/actors/fliswarm"},
		Registry:      "sdss-hub:5000",
		Image:         "sdss5/flicamera:latest",
		ContainerName: "flicamera",
		PingTimeout:   v1.Seconds(0.1),
		Observatory:   "APO",
		EnabledNodes:  []string{"gfa1", "gfa2", "fvc"},
		Nodes: map[string]v1.Node{
			"gfa1": {Host: "sdss-gfa1", Port: 19995, DockerClient: "tcp://sdss-gfa1:2375", Category: "gfa"},
			"gfa2": {Host: "sdss-gfa2", Port: 19995, DockerClient: "tcp://sdss-gfa2:2375", Category: "gfa"},
			"fvc":  {Host: "sdss-fvc", Port: 19995, DockerClient: "tcp://sdss-fvc:2375", Category: "fvc"},
		},
		Volumes: map[string]v1.Volume{"data": {Driver: "local", Opts: map[string]string{
			"type": "nfs", "o": "nfsvers=4,addr=sdss-hub,rw", "device": ":/data"}}},
		HTTP: v1.DefaultHTTP,
	}
	want.SetDefaults()
	if diff := cmp.Diff(want, l.Spec); diff != "" {
		t.Errorf("documentation sample (-want +got):\n%s", diff)
	}
}

// TestEmbeddedDefaultIsTheDeployedConfiguration: without -c, fliswarm runs
// what the original runs at both sites (testdata/deployed-config.yaml, the
// original's internal default), for each observatory.
func TestEmbeddedDefaultIsTheDeployedConfiguration(t *testing.T) {
	deployed, err := os.ReadFile(filepath.Join("testdata", "deployed-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, obs := range []string{"APO", "LCO"} {
		want, err := Parse(deployed, obs, nil)
		if err != nil {
			t.Fatalf("%s: deployed configuration: %v", obs, err)
		}
		t.Setenv("OBSERVATORY", obs)
		got, err := Load(Options{})
		if err != nil {
			t.Fatalf("%s: %v", obs, err)
		}
		if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
			t.Errorf("%s: embedded default differs from the deployed configuration (-want +got):\n%s", obs, diff)
		}
		if got.Revision != want.Revision {
			t.Errorf("%s: revision %s, deployed %s", obs, got.Revision, want.Revision)
		}
	}
}

func TestLoadEmbeddedDefault(t *testing.T) {
	unsetObservatory(t)
	l, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Source != "embedded default" || l.Layout != "per-observatory" {
		t.Errorf("Source, Layout = %q, %q; want embedded default, per-observatory", l.Source, l.Layout)
	}
	s := l.Spec
	// What tron and the nodes depend on: the actor reachable from tron,
	// the hub, the image, seven nodes, the uid/gid at APO, two NFS volumes,
	// power through jaeger.
	if s.Actor.Host != "0.0.0.0" || s.Actor.Port != 19996 || s.Actor.TronHost != "sdss5-hub" || s.Actor.TronPort != 6093 {
		t.Errorf("actor = %+v; want 0.0.0.0:19996, tron at sdss5-hub:6093", s.Actor)
	}
	if s.Observatory != "APO" || s.Registry != "sdss-hub:5000" || s.Image != "sdss/flicamera:latest" || s.PingTimeout != v1.Seconds(0.6) {
		t.Errorf("observatory %s, registry %s, image %s, ping_timeout %v", s.Observatory, s.Registry, s.Image, s.PingTimeout)
	}
	if diff := cmp.Diff([]string{"gfa1", "gfa2", "gfa3", "gfa4", "gfa5", "gfa6", "fvc"}, s.EnabledNodes); diff != "" {
		t.Errorf("enabled nodes (-want +got):\n%s", diff)
	}
	want5 := v1.Node{User: "sdss", Host: "sdss-gfa5", Port: 19995, DockerClient: "tcp://sdss-gfa5:2375",
		DockerUID: intp(2005), DockerGID: intp(3005), Category: "gfa", Power: &v1.NodePower{Device: "nuc5"}}
	if diff := cmp.Diff(want5, s.Nodes["gfa5"]); diff != "" {
		t.Errorf("gfa5 (-want +got):\n%s", diff)
	}
	if got := s.Volumes["data"].Opts["device"]; got != ":/data" || s.Volumes["home"].Opts["o"] != "nfsvers=4,addr=sdss-hub,ro" {
		t.Errorf("volumes = %+v", s.Volumes)
	}
	if s.Power == nil || s.Power.Actor != "jaeger" || s.Power.Command.PowerOff != "ieb switch --off" {
		t.Errorf("power = %+v", s.Power)
	}
	if diff := cmp.Diff([]string{"OBSERVATORY is not set: assuming APO"}, l.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if len(l.Revision) != 12 {
		t.Errorf("Revision = %q, want 12 hex digits", l.Revision)
	}

	t.Setenv("OBSERVATORY", "LCO")
	l, err = Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := l.Spec.Nodes["gfa1"]; l.Spec.Observatory != "LCO" || n.DockerUID != nil || n.Power == nil || n.Power.Device != "nuc1" {
		t.Errorf("LCO: observatory %s, gfa1 %+v", l.Spec.Observatory, n)
	}
}

const flatFile = `
actor:
  name: fs
  host: 0.0.0.0
  port: 20000
  tron_host: null
  log_dir: false
registry: null
image: sdss5/flicamera:1.2
container_name: cam
ping_timeout: 0.5
enabled_nodes: [n1]
nodes:
  n1:
    host: 10.213.0.11
    port: 19995
    docker-client: tcp://10.213.0.11:2375
    category: gfa
  n2:
    host: 10.213.0.12
    port: 19995
    docker-client: unix:///var/run/docker.sock
    category: fvc
volumes:
  data:
    opts:
      type: none
      o: bind
      device: /srv/data
resources:
  cpus: 2
  memory: 512m
privileged: false
network_mode: bridge
devices: [/dev/bus/usb, /dev/ttyUSB0]
env:
  LOG_LEVEL: debug
  RETRIES: 3
pull_policy: if-not-present
restart_policy: on-failure
resync_interval: 10
max_unavailable: 2
command_timeout: 60
status_interval: -1
events_per_node: 50
http: 0.0.0.0:8080
`

func TestLoadFlat(t *testing.T) {
	l, err := Load(Options{Path: writeFile(t, flatFile), Observatory: "lco"})
	if err != nil {
		t.Fatal(err)
	}
	want := &v1.Swarm{
		Actor:         v1.Actor{Name: "fs", Host: "0.0.0.0", Port: 20000},
		Image:         "sdss5/flicamera:1.2",
		ContainerName: "cam",
		PingTimeout:   v1.Seconds(0.5),
		Observatory:   "LCO",
		EnabledNodes:  []string{"n1"},
		Nodes: map[string]v1.Node{
			"n1": {Host: "10.213.0.11", Port: 19995, DockerClient: "tcp://10.213.0.11:2375", Category: "gfa"},
			"n2": {Host: "10.213.0.12", Port: 19995, DockerClient: "unix:///var/run/docker.sock", Category: "fvc"},
		},
		Volumes:        map[string]v1.Volume{"data": {Driver: "local", Opts: map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}}},
		Resources:      v1.Resources{CPUs: 2, Memory: "512m"},
		Privileged:     boolp(false),
		NetworkMode:    "bridge",
		Devices:        []string{"/dev/bus/usb", "/dev/ttyUSB0"},
		Env:            map[string]string{"LOG_LEVEL": "debug", "RETRIES": "3"},
		PullPolicy:     v1.PullIfNotPresent,
		RestartPolicy:  "on-failure",
		ResyncInterval: v1.Seconds(10),
		MaxUnavailable: 2,
		ReadyTimeout:   v1.Seconds(30), UpdateWait: v1.Seconds(600), PullStallTimeout: v1.Seconds(60),
		CommandTimeout: v1.Seconds(60),
		StatusInterval: v1.Seconds(-1), EventsPerNode: 50,
		HTTP:          "0.0.0.0:8080",
		RebootCommand: "sudo reboot",
	}
	if diff := cmp.Diff(want, l.Spec); diff != "" {
		t.Errorf("flat file (-want +got):\n%s", diff)
	}
	if l.Layout != "flat" || len(l.Warnings) != 0 {
		t.Errorf("Layout %q, warnings %v; want flat and none", l.Layout, l.Warnings)
	}
}

// perObsFile uses every key seen in the per-observatory deployments.
const perObsFile = `
actor:
  name: fliswarm
  host: 0.0.0.0
  port: 19996
  tron_host: sdss5-hub
  tron_port: 6093
  log_dir: false
  additional_properties: true
registry: sdss5-hub:5000
image: sdss5/flicamera:latest
container_name: flicamera
ping_timeout: 0.2
power:
  actor: jaeger
  command:
    poweron: ieb switch --on
    poweroff: ieb switch --off
reboot_command: sudo /sbin/reboot
enabled_nodes:
  APO: [gfa1, fvc]
  LCO: [gfa1]
nodes:
  APO:
    gfa1:
      host: gfa1.apo.example
      port: 19995
      docker-client: tcp://gfa1.apo.example:2375
      category: gfa
      user: sdss
      docker-uid: 2005
      docker-gid: 3005
      power:
        device: nuc1
    fvc:
      host: fvc.apo.example
      port: 19995
      docker-client: tcp://fvc.apo.example:2375
      category: fvc
      user: sdss
  LCO:
    gfa1:
      host: gfa1.lco.example
      port: 19995
      docker-client: tcp://gfa1.lco.example:2375
      category: gfa
      docker-uid: 1000
      power:
        device: nuc9
volumes:
  data:
    driver: local
    opts:
      type: nfs
      o: nfsvers=4,addr=sdss5-hub,rw
      device: :/data
`

func TestLoadPerObservatory(t *testing.T) {
	common := func(obs string) *v1.Swarm {
		return &v1.Swarm{
			Actor:    v1.Actor{Name: "fliswarm", Host: "0.0.0.0", Port: 19996, TronHost: "sdss5-hub", TronPort: 6093},
			Registry: "sdss5-hub:5000", Image: "sdss5/flicamera:latest", ContainerName: "flicamera",
			PingTimeout: v1.Seconds(0.2), Observatory: obs,
			Power:         &v1.Power{Actor: "jaeger", Command: v1.PowerCommand{PowerOn: "ieb switch --on", PowerOff: "ieb switch --off"}},
			RebootCommand: "sudo /sbin/reboot",
			HTTP:          v1.DefaultHTTP,
			Volumes: map[string]v1.Volume{"data": {Driver: "local", Opts: map[string]string{
				"type": "nfs", "o": "nfsvers=4,addr=sdss5-hub,rw", "device": ":/data"}}},
		}
	}
	apo := common("APO")
	apo.EnabledNodes = []string{"gfa1", "fvc"}
	apo.Nodes = map[string]v1.Node{
		"gfa1": {Host: "gfa1.apo.example", Port: 19995, DockerClient: "tcp://gfa1.apo.example:2375", Category: "gfa",
			User: "sdss", DockerUID: intp(2005), DockerGID: intp(3005), Power: &v1.NodePower{Device: "nuc1"}},
		"fvc": {Host: "fvc.apo.example", Port: 19995, DockerClient: "tcp://fvc.apo.example:2375", Category: "fvc", User: "sdss"},
	}
	apo.SetDefaults()
	lco := common("LCO")
	lco.EnabledNodes = []string{"gfa1"}
	lco.Nodes = map[string]v1.Node{
		"gfa1": {Host: "gfa1.lco.example", Port: 19995, DockerClient: "tcp://gfa1.lco.example:2375", Category: "gfa",
			DockerUID: intp(1000), Power: &v1.NodePower{Device: "nuc9"}},
	}
	lco.SetDefaults()

	path := writeFile(t, perObsFile)
	tests := []struct {
		name         string
		env          string // "" leaves OBSERVATORY unset
		opt          string
		want         *v1.Swarm
		wantWarnings []string
	}{
		{"env APO", "APO", "", apo, nil},
		{"env LCO", "LCO", "", lco, nil},
		{"env lower case", "lco", "", lco, nil},
		{"option LCO", "", "LCO", lco, nil},
		{"option beats env", "APO", "LCO", lco, nil},
		{"unset assumes APO and warns", "", "", apo, []string{"OBSERVATORY is not set: assuming APO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env == "" {
				unsetObservatory(t)
			} else {
				t.Setenv("OBSERVATORY", tt.env)
			}
			l, err := Load(Options{Path: path, Observatory: tt.opt})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, l.Spec); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantWarnings, l.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if l.Layout != "per-observatory" || l.Source != path {
				t.Errorf("Layout, Source = %q, %q", l.Layout, l.Source)
			}
		})
	}
}

func TestLoadRevisionDiffersByObservatory(t *testing.T) {
	path := writeFile(t, perObsFile)
	a, err := Load(Options{Path: path, Observatory: "APO"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(Options{Path: path, Observatory: "APO"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(Options{Path: path, Observatory: "LCO"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision != b.Revision {
		t.Errorf("the same file loaded twice has revisions %s and %s", a.Revision, b.Revision)
	}
	if a.Revision == c.Revision {
		t.Errorf("APO and LCO specs share revision %s", a.Revision)
	}
}

func TestLogDirValues(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{"false", ""},
		{"null", ""},
		{"/var/log/fliswarm", "/var/log/fliswarm"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			doc := strings.Replace(flatFile, "log_dir: false", "log_dir: "+tt.value, 1)
			l, err := Parse([]byte(doc), "APO", nil)
			if err != nil {
				t.Fatal(err)
			}
			if l.Spec.Actor.LogDir != tt.want {
				t.Errorf("log_dir %s gave %q, want %q", tt.value, l.Spec.Actor.LogDir, tt.want)
			}
		})
	}
	doc := strings.Replace(flatFile, "log_dir: false", "log_dir: true", 1)
	_, err := Parse([]byte(doc), "APO", nil)
	if diff := cmp.Diff([]string{"actor.log_dir"}, problemPaths(t, err)); diff != "" {
		t.Errorf("log_dir: true (-want +got):\n%s", diff)
	}
}

func TestHTTPValues(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{"null", ""},
		{`""`, ""},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{":9100", ":9100"},
		{"'[::1]:19997'", "[::1]:19997"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			doc := strings.Replace(flatFile, "http: 0.0.0.0:8080", "http: "+tt.value, 1)
			l, err := Parse([]byte(doc), "APO", nil)
			if err != nil {
				t.Fatal(err)
			}
			if l.Spec.HTTP != tt.want {
				t.Errorf("http %s gave %q, want %q", tt.value, l.Spec.HTTP, tt.want)
			}
		})
	}
	for _, bad := range []string{"localhost", "127.0.0.1:http", "127.0.0.1:70000", "8080", "[1, 2]"} {
		doc := strings.Replace(flatFile, "http: 0.0.0.0:8080", "http: "+bad, 1)
		_, err := Parse([]byte(doc), "APO", nil)
		if diff := cmp.Diff([]string{"http"}, problemPaths(t, err)); diff != "" {
			t.Errorf("http: %s (-want +got):\n%s", bad, diff)
		}
	}
	// Without the key: on, loopback only.
	doc := strings.Replace(flatFile, "http: 0.0.0.0:8080\n", "", 1)
	l, err := Parse([]byte(doc), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HTTP != v1.DefaultHTTP {
		t.Errorf("no http key gave %q, want %q", l.Spec.HTTP, v1.DefaultHTTP)
	}
}

func TestNodesOverride(t *testing.T) {
	perObs := writeFile(t, perObsFile)
	flat := writeFile(t, flatFile)
	tests := []struct {
		name      string
		path      string
		obs       string
		nodes     []string
		want      []string // enabled nodes, when the load succeeds
		wantPaths []string // problem paths, when it fails
	}{
		{"flat replaces", flat, "APO", []string{"n2"}, []string{"n2"}, nil},
		{"flat both", flat, "APO", []string{"n2", "n1"}, []string{"n2", "n1"}, nil},
		{"empty list enables none", flat, "APO", []string{}, []string{}, nil},
		{"nil keeps the file's", flat, "APO", nil, []string{"n1"}, nil},
		{"per observatory", perObs, "APO", []string{"fvc"}, []string{"fvc"}, nil},
		{"node of the other observatory only", perObs, "LCO", []string{"fvc"}, nil, []string{"--nodes[0]"}},
		{"unknown node", flat, "APO", []string{"n1", "nope"}, nil, []string{"--nodes[1]"}},
		{"listed twice", flat, "APO", []string{"n1", "n1"}, nil, []string{"--nodes[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Load(Options{Path: tt.path, Observatory: tt.obs, Nodes: tt.nodes})
			if tt.wantPaths != nil {
				if diff := cmp.Diff(tt.wantPaths, problemPaths(t, err)); diff != "" {
					t.Fatalf("problems (-want +got):\n%s\n%v", diff, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, l.Spec.EnabledNodes); diff != "" {
				t.Errorf("enabled nodes (-want +got):\n%s", diff)
			}
		})
	}

	// --nodes stands in for a missing enabled_nodes.
	noEnabled := strings.Replace(flatFile, "enabled_nodes: [n1]\n", "", 1)
	if _, err := Parse([]byte(noEnabled), "APO", nil); err == nil {
		t.Error("a file without enabled_nodes must be rejected")
	}
	l, err := Parse([]byte(noEnabled), "APO", []string{"n1"})
	if err != nil {
		t.Fatalf("a file without enabled_nodes with --nodes: %v", err)
	}
	if diff := cmp.Diff([]string{"n1"}, l.Spec.EnabledNodes); diff != "" {
		t.Errorf("enabled nodes (-want +got):\n%s", diff)
	}
}

func TestUnknownNodeMessage(t *testing.T) {
	_, err := Load(Options{Path: writeFile(t, flatFile), Observatory: "APO", Nodes: []string{"nope"}})
	if err == nil {
		t.Fatal("unknown node accepted")
	}
	msg := err.Error()
	for _, want := range []string{"--nodes[0]", `"nope"`, "invalid configuration"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || !strings.HasSuffix(ce.Source, "fliswarm.yaml") {
		t.Errorf("error %T does not carry the file as its Source", err)
	}
}

func TestBrokenFilesReportEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		obs  string
		doc  string
		want []string
	}{
		{
			name: "flat: every kind of problem at once",
			obs:  "APO",
			doc: `
actor:
  name: fliswarm
  prot: 19996
image: sdss5/flicamera:latest
ping_timeout: fast
enabled_nodes: [gfa1, gfa2, gfa3]
nodes:
  gfa1:
    host: sdss-gfa1
    port: "19995"
    docker-client: tcp://sdss-gfa1:2375
  gfa2:
    host: sdss-gfa2
    port: 19995
    docker-client: sdss-gfa2:2375
    colour: blue
  fvc:
    host: sdss-gfa2
    port: 19995
    docker-client: tcp://sdss-gfa2:2375
volumes:
  data:
    driver: local
    opts:
      type: nfs
`,
			want: []string{
				"actor.prot",               // unknown key
				"enabled_nodes[2]",         // enabled node missing from nodes
				"nodes.gfa1.port",          // wrong type
				"nodes.gfa2.colour",        // unknown key
				"nodes.gfa2.docker-client", // bad docker address
				"nodes.gfa2.port",          // duplicate port on host sdss-gfa2 (fvc has it first)
				"ping_timeout",             // wrong type
				"volumes.data.opts.device", // volume without device
			},
		},
		{
			name: "per observatory: paths name the observatory",
			obs:  "LCO",
			doc: `
image: sdss5/flicamera:latest
enabled_nodes:
  APO: [gfa1]
  LCO: [gfa1, fvc]
nodes:
  APO:
    gfa1: {host: a, port: 19995, docker-client: tcp://a:2375, docker-uid: x}
  LCO:
    gfa1: {host: b, port: 19995, docker-client: tcp://b, user: 7}
    gfa2: {host: b, port: 19995, docker-client: tcp://b:2375}
volumes:
  data: {opts: {}}
`,
			want: []string{
				"enabled_nodes.LCO[1]",
				"nodes.APO.gfa1.docker-uid", // the other observatory is type-checked too
				"nodes.LCO.gfa1.docker-client",
				"nodes.LCO.gfa1.user",
				"nodes.LCO.gfa2.port",
				"volumes.data.opts.device",
			},
		},
		{
			name: "top-level types and unknown keys",
			obs:  "APO",
			doc: `
actor: fliswarm
registry: [a]
image: 5
container_name: flicamera
enabled_nodes: gfa1
nodes: {}
volumes: []
power: {actor: jaeger, command: {poweron: 1, reboot: x}}
privileged: yes please
max_unavailable: 1.5
unknown_thing: 1
`,
			want: []string{
				"actor",
				"enabled_nodes",
				"image",
				"max_unavailable",
				"power.command.poweron",
				"power.command.reboot",
				"privileged",
				"registry",
				"unknown_thing",
				"volumes",
			},
		},
		{
			name: "required sections missing",
			obs:  "APO",
			doc:  "image: x\n",
			want: []string{"enabled_nodes", "nodes"},
		},
		{
			name: "per observatory without the chosen section",
			obs:  "LCO",
			doc: `
image: x
enabled_nodes: {APO: [a]}
nodes: {APO: {a: {host: a, port: 1, docker-client: "tcp://a:1"}}, KPNO: {}}
`,
			want: []string{"enabled_nodes", "nodes", "nodes.KPNO"},
		},
		{"not YAML", "APO", "a: [b\n", []string{"(file)"}},
		{"empty", "APO", "", []string{"(file)"}},
		{"not a mapping", "APO", "- a\n- b\n", []string{"(file)"}},
		{"a scalar", "APO", "fliswarm\n", []string{"(file)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.doc)
			_, err := Load(Options{Path: path, Observatory: tt.obs})
			if err == nil {
				t.Fatal("broken file accepted")
			}
			if diff := cmp.Diff(tt.want, problemPaths(t, err)); diff != "" {
				t.Errorf("problem paths (-want +got):\n%s\nerror:\n%v", diff, err)
			}
			// The message names the file and puts each problem on its own line.
			msg := err.Error()
			if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file %s:\n%s", path, msg)
			}
			for _, p := range tt.want {
				if !strings.Contains(msg, "\n  "+p+": ") {
					t.Errorf("error has no line for %s:\n%s", p, msg)
				}
			}
		})
	}
}

func TestBrokenFileMessages(t *testing.T) {
	doc := `
image: x
enabled_nodes: [gfa1]
nodes:
  gfa1: {host: h, port: "19995", docker-client: "tcp://h:2375", colour: blue}
`
	_, err := Parse([]byte(doc), "APO", nil)
	if err == nil {
		t.Fatal("accepted")
	}
	var list v1.ErrorList
	errors.As(err, &list)
	got := map[string]string{}
	for _, e := range list {
		got[e.Path] = e.Message
	}
	want := map[string]string{
		"nodes.gfa1.port":   `expected an integer, found a string ("19995")`,
		"nodes.gfa1.colour": "unknown key (expected one of category, docker-client, docker-gid, docker-uid, env, host, kubernetes_hostname, port, power, ssh, tls, user)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(Options{Path: filepath.Join(t.TempDir(), "nope.yaml")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want an error wrapping ErrNotExist", err)
	}
}

func TestShowLoadsBackIdentically(t *testing.T) {
	files := map[string]struct {
		doc string
		obs string
	}{
		"embedded default": {string(config.Default), "APO"},
		"flat":             {flatFile, "LCO"},
		"per-observatory":  {perObsFile, "LCO"},
	}
	for name, f := range files {
		t.Run(name, func(t *testing.T) {
			l, err := Parse([]byte(f.doc), f.obs, nil)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Show(l.Spec)
			if err != nil {
				t.Fatal(err)
			}
			// Loaded without an observatory: the file's own key decides.
			back, err := Parse(out, "", nil)
			if err != nil {
				t.Fatalf("Show output does not load:\n%v\n%s", err, out)
			}
			if diff := cmp.Diff(l.Spec, back.Spec); diff != "" {
				t.Errorf("spec after Show and Parse (-before +after):\n%s", diff)
			}
			if back.Revision != l.Revision {
				t.Errorf("revision %s became %s", l.Revision, back.Revision)
			}
			if len(back.Warnings) != 0 {
				t.Errorf("Show output loads with warnings %v", back.Warnings)
			}
			again, err := Show(back.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again) {
				t.Errorf("Show is not stable:\n%s\n---\n%s", out, again)
			}
		})
	}
}

func TestRevisionChangesWithEveryField(t *testing.T) {
	base, err := Parse([]byte(flatFile), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string]func(s *v1.Swarm){
		"image":         func(s *v1.Swarm) { s.Image = "other" },
		"node port":     func(s *v1.Swarm) { n := s.Nodes["n1"]; n.Port++; s.Nodes["n1"] = n },
		"ping timeout":  func(s *v1.Swarm) { s.PingTimeout += v1.Duration(time.Millisecond) },
		"actor port":    func(s *v1.Swarm) { s.Actor.Port++ },
		"volume opts":   func(s *v1.Swarm) { s.Volumes["data"].Opts["o"] = "ro" },
		"enabled order": func(s *v1.Swarm) { s.EnabledNodes = []string{"n2", "n1"} },
		"env":           func(s *v1.Swarm) { s.Env["X"] = "1" },
		"http":          func(s *v1.Swarm) { s.HTTP = "" },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			l, err := Parse([]byte(flatFile), "APO", nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Spec.EnabledNodes = append(l.Spec.EnabledNodes, "n2")
			before := Revision(l.Spec)
			edit(l.Spec)
			if after := Revision(l.Spec); after == before {
				t.Errorf("revision %s did not change", after)
			}
		})
	}
	if Revision(base.Spec) != base.Revision {
		t.Errorf("Revision(spec) = %s, Loaded.Revision = %s", Revision(base.Spec), base.Revision)
	}
}
