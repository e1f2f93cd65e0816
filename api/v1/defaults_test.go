package v1

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSetDefaultsFillsEveryField(t *testing.T) {
	var s Swarm
	s.SetDefaults()

	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"actor.name", s.Actor.Name, "fliswarm"},
		{"actor.host", s.Actor.Host, "127.0.0.1"},
		{"actor.port", s.Actor.Port, 19996},
		{"container_name", s.ContainerName, "flicamera"},
		{"ping_timeout", s.PingTimeout.D(), 100 * time.Millisecond},
		{"observatory", s.Observatory, "APO"},
		{"enabled_nodes", s.EnabledNodes, []string{}},
		{"nodes", s.Nodes, map[string]Node{}},
		{"volumes", s.Volumes, map[string]Volume{}},
		{"resources.cpus", s.Resources.CPUs, 3.5},
		{"resources.memory", s.Resources.Memory, "6g"},
		{"privileged", s.Privileged != nil && *s.Privileged, true},
		{"network_mode", s.NetworkMode, "host"},
		{"devices", s.Devices, []string{"/dev/bus/usb"}},
		{"pull_policy", s.PullPolicy, PullAlways},
		{"restart_policy", s.RestartPolicy, "no"},
		{"resync_interval", s.ResyncInterval.D(), 30 * time.Second},
		{"max_unavailable", s.MaxUnavailable, 1},
		{"command_timeout", s.CommandTimeout.D(), time.Duration(0)}, // no limit, as the original
		{"status_interval", s.StatusInterval.D(), 300 * time.Second},
		{"events_per_node", s.EventsPerNode, 0}, // DefaultEventsPerNode, applied by the recorder
		{"reboot_command", s.RebootCommand, "sudo reboot"},
		// Not defaulted: no tron, no log files, Docker Hub, no power.
		{"actor.tron_host", s.Actor.TronHost, ""},
		{"actor.tron_port", s.Actor.TronPort, 0},
		{"actor.log_dir", s.Actor.LogDir, ""},
		{"registry", s.Registry, ""},
		{"power", s.Power == nil, true},
		{"env", s.Env == nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("%s after SetDefaults (-want +got):\n%s", tt.field, diff)
			}
		})
	}
}

func TestSetDefaultsVolumes(t *testing.T) {
	s := Swarm{Volumes: map[string]Volume{
		"data":    {Opts: map[string]string{"device": ":/data"}},
		"scratch": {Driver: "nfs"},
	}}
	s.SetDefaults()
	want := map[string]Volume{
		"data":    {Driver: "local", Opts: map[string]string{"device": ":/data"}},
		"scratch": {Driver: "nfs", Opts: map[string]string{}},
	}
	if diff := cmp.Diff(want, s.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
}

func TestSetDefaultsKeepsSetValues(t *testing.T) {
	f := false
	set := Swarm{
		Actor:          Actor{Name: "fs", Host: "0.0.0.0", Port: 1, TronHost: "hub", TronPort: 6093, LogDir: "/logs"},
		Registry:       "reg:5000",
		Image:          "img:tag",
		ContainerName:  "cam",
		PingTimeout:    Seconds(2),
		Observatory:    "LCO",
		EnabledNodes:   []string{"a"},
		Nodes:          map[string]Node{"a": {Host: "h", Port: 1, DockerClient: "tcp://h:2375"}},
		Volumes:        map[string]Volume{"v": {Driver: "nfs", Opts: map[string]string{"device": "/x"}}},
		Resources:      Resources{CPUs: 1, Memory: "1g"},
		Privileged:     &f,
		NetworkMode:    "bridge",
		Devices:        []string{},
		Env:            map[string]string{"A": "b"},
		PullPolicy:     PullIfNotPresent,
		RestartPolicy:  "always",
		ResyncInterval: Seconds(5),
		MaxUnavailable: 3,
		ReadyTimeout:   Seconds(4), UpdateWait: Seconds(9), PullStallTimeout: Seconds(11),
		CommandTimeout: Seconds(7),
		StatusInterval: Seconds(-1), EventsPerNode: 7,
		Power:         &Power{Actor: "jaeger"},
		RebootCommand: "reboot",
	}
	s := set
	s.SetDefaults()
	if diff := cmp.Diff(set, s); diff != "" {
		t.Errorf("SetDefaults changed set values (-want +got):\n%s", diff)
	}
	if s.Devices == nil || len(s.Devices) != 0 {
		t.Errorf("an explicitly empty device list must stay empty, got %v", s.Devices)
	}
}

func TestSetDefaultsIsIdempotent(t *testing.T) {
	for name, s := range map[string]Swarm{
		"empty":   {},
		"volumes": {Volumes: map[string]Volume{"data": {Opts: map[string]string{"device": ":/data"}}}},
		"partial": {Actor: Actor{Port: 5}, Resources: Resources{Memory: "1g"}},
	} {
		t.Run(name, func(t *testing.T) {
			s.SetDefaults()
			once := clone(t, s)
			s.SetDefaults()
			if diff := cmp.Diff(once, s); diff != "" {
				t.Errorf("second SetDefaults changed the spec (-once +twice):\n%s", diff)
			}
		})
	}
}

// clone deep-copies the parts of a Swarm SetDefaults can touch.
func clone(t *testing.T, s Swarm) Swarm {
	t.Helper()
	c := s
	c.EnabledNodes = append([]string{}, s.EnabledNodes...)
	c.Devices = append([]string{}, s.Devices...)
	c.Nodes = map[string]Node{}
	for k, v := range s.Nodes {
		c.Nodes[k] = v
	}
	c.Volumes = map[string]Volume{}
	for k, v := range s.Volumes {
		opts := map[string]string{}
		for ok, ov := range v.Opts {
			opts[ok] = ov
		}
		v.Opts = opts
		c.Volumes[k] = v
	}
	if s.Privileged != nil {
		p := *s.Privileged
		c.Privileged = &p
	}
	return c
}

func TestObservatoryFromEnv(t *testing.T) {
	tests := []struct {
		name   string
		set    bool
		value  string
		want   string
		wantOK bool
	}{
		{"unset", false, "", "", false},
		{"empty", true, "", "", false},
		{"LCO", true, "LCO", "LCO", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("OBSERVATORY", tt.value)
			if !tt.set {
				unsetenv(t, "OBSERVATORY")
			}
			got, ok := ObservatoryFromEnv()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("ObservatoryFromEnv() = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
