package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func samplePath(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "config", "samples", name)
}

func TestSamplesLoadCleanly(t *testing.T) {
	tests := []struct {
		file     string
		obs      string
		layout   string
		enabled  []string
		nodeUser string // user of gfa1
	}{
		{"flat.yaml", "APO", "flat", []string{"gfa1", "gfa2", "fvc"}, ""},
		{"per-observatory.yaml", "APO", "per-observatory", []string{"gfa1", "gfa2", "gfa3", "fvc"}, "sdss"},
		{"per-observatory.yaml", "LCO", "per-observatory", []string{"gfa1", "gfa2", "fvc"}, "sdss5"},
	}
	for _, tt := range tests {
		t.Run(tt.file+" "+tt.obs, func(t *testing.T) {
			t.Setenv("OBSERVATORY", tt.obs)
			l, err := Load(Options{Path: samplePath(t, tt.file)})
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Warnings) != 0 {
				t.Errorf("warnings: %v", l.Warnings)
			}
			if l.Layout != tt.layout || l.Spec.Observatory != tt.obs {
				t.Errorf("layout %q observatory %q", l.Layout, l.Spec.Observatory)
			}
			if diff := cmp.Diff(tt.enabled, l.Spec.EnabledNodes); diff != "" {
				t.Errorf("enabled nodes (-want +got):\n%s", diff)
			}
			if got := l.Spec.Nodes["gfa1"].User; got != tt.nodeUser {
				t.Errorf("gfa1 user = %q, want %q", got, tt.nodeUser)
			}
		})
	}
}

func TestPerObservatorySampleHasEveryDeploymentKey(t *testing.T) {
	for _, obs := range []string{"APO", "LCO"} {
		l, err := Load(Options{Path: samplePath(t, "per-observatory.yaml"), Observatory: obs})
		if err != nil {
			t.Fatal(err)
		}
		s := l.Spec
		if s.Power == nil || s.Power.Actor != "jaeger" || s.Power.Command.PowerOn == "" || s.Power.Command.PowerOff == "" {
			t.Errorf("%s: power = %+v", obs, s.Power)
		}
		if s.RebootCommand != "sudo reboot" || s.Actor.LogDir != "" {
			t.Errorf("%s: reboot_command %q, log_dir %q", obs, s.RebootCommand, s.Actor.LogDir)
		}
		g := s.Nodes["gfa1"]
		if g.User == "" || g.DockerUID == nil || g.DockerGID == nil || g.Power == nil || g.Power.Device == "" {
			t.Errorf("%s: gfa1 lacks a deployment key: %+v", obs, g)
		}
	}
	raw, err := os.ReadFile(samplePath(t, "per-observatory.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"additional_properties:", "log_dir: false"} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("sample lacks %q", key)
		}
	}
}

// The flat sample documents fliswarm's own keys in a commented block that
// shows their defaults: uncommenting it must load, and change nothing.
func TestFlatSampleExtensionsShowTheDefaults(t *testing.T) {
	raw, err := os.ReadFile(samplePath(t, "flat.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	seen := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "# --- fliswarm extensions"):
			in = true
		case strings.HasPrefix(line, "# --- end of fliswarm extensions"):
			in = false
		case in && strings.HasPrefix(line, "# "):
			line = strings.TrimPrefix(line, "# ")
			if k, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, " ") {
				seen[k] = true
			}
		}
		out = append(out, line)
	}
	for _, k := range []string{"resources", "pull_policy", "restart_policy", "env", "resync_interval", "max_unavailable",
		"command_timeout", "status_interval", "privileged", "network_mode", "devices"} {
		if !seen[k] {
			t.Errorf("the extension block does not show %s", k)
		}
	}
	plain, err := Parse(raw, "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	uncommented, err := Parse([]byte(strings.Join(out, "\n")), "APO", nil)
	if err != nil {
		t.Fatalf("the uncommented extensions do not load: %v", err)
	}
	// env: {} is an empty map where the default is none; both render alike.
	uncommented.Spec.Env = plain.Spec.Env
	if diff := cmp.Diff(plain.Spec, uncommented.Spec); diff != "" {
		t.Errorf("the values shown are not the defaults (-defaults +shown):\n%s", diff)
	}
}
