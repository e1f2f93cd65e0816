package cli_test

import (
	"bytes"
	"github.com/sdss/fliswarm/test/testbed"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sdss/fliswarm/pkg/cli"
	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/version"
)

// run runs the command line in this process with a private run directory.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"--run-dir", t.TempDir()}, args...)
	code = cli.Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fliswarm.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort returns a loopback port nothing listens on (it was free a
// moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestHelpListsTheCommands(t *testing.T) {
	code, out, errOut := run(t, "--help")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, c := range []string{"start", "stop", "restart", "reconcile", "status", "config", "send", "version", "export"} {
		if !strings.Contains(out, "\n  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != cli.ExitOK || out != version.Version+"\n" {
		t.Errorf("version: exit %d, output %q; want 0, %q", code, out, version.Version+"\n")
	}
	code, out, _ = run(t, "--version")
	if code != cli.ExitOK || !strings.Contains(out, version.Version) {
		t.Errorf("--version: exit %d, output %q", code, out)
	}
}

func TestConfigShowDefault(t *testing.T) {
	t.Setenv("OBSERVATORY", "APO")
	code, out, errOut := run(t, "config", "show")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	// Defaults are applied: every fliswarm key is there with its value.
	for _, line := range []string{
		"container_name: flicamera", "ping_timeout: 0.6", "observatory: APO", "host: 0.0.0.0", "- gfa6",
		"docker-uid: 2005", "image: sdss/flicamera:latest", "memory: 6g", "cpus: 3.5",
		"privileged: true", "network_mode: host", "- /dev/bus/usb", "pull_policy: always",
		`restart_policy: "no"`, "resync_interval: 30", "max_unavailable: 1", "command_timeout: 0",
		"status_interval: 300", "reboot_command: sudo reboot", "driver: local", "docker-client: tcp://sdss-gfa1:2375",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("config show lacks %q:\n%s", line, out)
		}
	}
	// And it loads back as the same configuration.
	def, err := config.Load(config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	code, valid, errOut := run(t, "-c", writeFile(t, out), "config", "validate")
	if code != cli.ExitOK {
		t.Fatalf("config show output does not validate: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(valid, "revision "+def.Revision) {
		t.Errorf("config show output has another revision than the default %s: %s", def.Revision, valid)
	}
}

func TestConfigShowNodesOverride(t *testing.T) {
	t.Setenv("OBSERVATORY", "APO")
	code, out, errOut := run(t, "--nodes", "fvc,gfa1", "config", "show")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if !strings.Contains(out, "enabled_nodes:\n- fvc\n- gfa1\n") {
		t.Errorf("--nodes not applied:\n%s", out)
	}
	code, _, errOut = run(t, "--nodes", "fvc,nope", "config", "show")
	if code != cli.ExitConfig || !strings.Contains(errOut, "--nodes[1]") || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("unknown node in --nodes: exit %d, stderr %s", code, errOut)
	}
}

const perObservatory = `
actor: {name: fliswarm, host: 127.0.0.1, port: 19996, tron_host: null, log_dir: false, additional_properties: true}
registry: null
image: sdss5/flicamera:latest
reboot_command: sudo reboot
power: {actor: jaeger, command: {poweron: ieb switch --on, poweroff: ieb switch --off}}
enabled_nodes:
  APO: [gfa1]
  LCO: [gfa1, fvc]
nodes:
  APO:
    gfa1: {host: a1, port: 19995, docker-client: "tcp://a1:2375", category: gfa, user: sdss, docker-uid: 1, docker-gid: 2, power: {device: nuc1}}
  LCO:
    gfa1: {host: l1, port: 19995, docker-client: "tcp://l1:2375", category: gfa}
    fvc: {host: l2, port: 19995, docker-client: "unix:///var/run/docker.sock", category: fvc}
volumes:
  data: {driver: local, opts: {type: nfs, o: "nfsvers=4,addr=hub,rw", device: ":/data"}}
`

func TestConfigValidate(t *testing.T) {
	t.Setenv("OBSERVATORY", "LCO")
	path := writeFile(t, perObservatory)
	code, out, errOut := run(t, "-c", path, "config", "validate")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{path, "valid", "per-observatory layout", "observatory LCO", "2 enabled nodes"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if errOut != "" {
		t.Errorf("stderr %q, want nothing", errOut)
	}
}

func TestConfigValidateWarnsWithoutObservatory(t *testing.T) {
	t.Setenv("OBSERVATORY", "")
	code, out, errOut := run(t, "-c", writeFile(t, perObservatory), "config", "validate")
	if code != cli.ExitOK || !strings.Contains(out, "observatory APO") {
		t.Fatalf("exit %d, stdout %s, stderr %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "warning: OBSERVATORY is not set: assuming APO") {
		t.Errorf("no warning on stderr: %q", errOut)
	}
}

func TestConfigValidateBroken(t *testing.T) {
	t.Setenv("OBSERVATORY", "APO")
	broken := `
actor: {name: fliswarm, prot: 19996}
image: sdss5/flicamera:latest
enabled_nodes:
  APO: [gfa1, gfa2, gfa9]
nodes:
  APO:
    gfa1: {host: h1, port: "19995", docker-client: "tcp://h1:2375"}
    gfa2: {host: h1, port: 19996, docker-client: "h2:2375"}
    fvc: {host: h1, port: 19996, docker-client: "tcp://h1:2375"}
volumes:
  data: {driver: local, opts: {type: nfs}}
`
	path := writeFile(t, broken)
	code, out, errOut := run(t, "-c", path, "config", "validate")
	if code != cli.ExitConfig {
		t.Fatalf("exit %d, want %d; stderr %s", code, cli.ExitConfig, errOut)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	for _, want := range []string{
		path,
		"actor.prot: unknown key",
		"enabled_nodes.APO[2]: node \"gfa9\" is enabled but not defined in nodes.APO",
		"nodes.APO.gfa1.port: expected an integer, found a string",
		"nodes.APO.gfa2.docker-client: expected tcp://host:port, ssh://user@host or unix:///path",
		"nodes.APO.gfa2.port: port 19996 on host h1 is also used by node fvc",
		"volumes.data.opts.device: is required",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"--no-such-flag", "status"},
		{"stop", "--no-such-flag"},
		{"version", "extra"},
		{"send"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, errOut := run(t, args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d; stderr %s", code, cli.ExitUsage, errOut)
			}
			if !strings.HasPrefix(errOut, "fliswarm: ") {
				t.Errorf("stderr %q does not say what went wrong", errOut)
			}
		})
	}
}

func TestMissingConfigFile(t *testing.T) {
	code, _, errOut := run(t, "-c", filepath.Join(t.TempDir(), "nope.yaml"), "config", "validate")
	if code != cli.ExitConfig || !strings.Contains(errOut, "nope.yaml") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}

func TestStopWhenNothingRuns(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := cli.Main([]string{"--run-dir", dir, "stop"}, &out, &errOut)
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut.String())
	}
	if want := "fliswarm is not running (no daemon holds " + filepath.Join(dir, "fliswarm.pid") + ")\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}

func TestSendWhereNothingListens(t *testing.T) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(closedPort(t)))
	code, out, errOut := run(t, "send", "--addr", addr, "--timeout", "20s", "ping")
	if code != cli.ExitFailure {
		t.Fatalf("exit %d, want %d; stderr %s", code, cli.ExitFailure, errOut)
	}
	if out != "" {
		t.Errorf("stdout %q, want nothing", out)
	}
	if want := "connecting to the actor at " + addr; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}
}

func TestSendUsesTheConfiguredActorAddress(t *testing.T) {
	port := closedPort(t)
	cfg := strings.Replace(perObservatory, "port: 19996", "port: "+strconv.Itoa(port), 1)
	t.Setenv("OBSERVATORY", "LCO")
	code, _, errOut := run(t, "-c", writeFile(t, cfg), "send", "--timeout", "20s", "status")
	if want := "127.0.0.1:" + strconv.Itoa(port); code != cli.ExitFailure || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, stderr %q; want 1 and the address %s", code, errOut, want)
	}
}

// The service unit's command line must be one the CLI accepts.
func TestServiceUnitCommandLine(t *testing.T) {
	root := repoRoot(t)
	unit, err := os.ReadFile(filepath.Join(root, "config", "fliswarm.service"))
	if err != nil {
		t.Fatal(err)
	}
	var exec []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec = strings.Fields(v)
		}
	}
	if len(exec) < 2 || filepath.Base(exec[0]) != "fliswarm" || !filepath.IsAbs(exec[0]) {
		t.Fatalf("ExecStart = %q, want an absolute path to fliswarm", exec)
	}
	want := []string{"-c", "/etc/fliswarm/fliswarm.yaml", "start", "--foreground"}
	if strings.Join(exec[1:], " ") != strings.Join(want, " ") {
		t.Errorf("ExecStart arguments %q, want %q", exec[1:], want)
	}
	for _, line := range []string{"Restart=on-failure", "Environment=OBSERVATORY=APO"} {
		if !strings.Contains(string(unit), "\n"+line+"\n") {
			t.Errorf("unit lacks %s", line)
		}
	}
	// The flags parse: with a broken configuration path the command gets
	// as far as loading it (exit 3), not a usage error (exit 2).
	args := append([]string{}, exec[1:]...)
	args[1] = filepath.Join(t.TempDir(), "absent.yaml")
	if code, _, errOut := run(t, args...); code != cli.ExitConfig {
		t.Errorf("%q: exit %d, want %d; stderr %s", args, code, cli.ExitConfig, errOut)
	}
}

// repoRoot is the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
