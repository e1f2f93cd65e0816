package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/cli"
)

const registryPassword = "pw-9f3c1a7e-never-shown"

func TestConfigShowNeverShowsThePassword(t *testing.T) {
	t.Setenv("OBSERVATORY", "APO")
	path := writeFile(t, `
image: sdss5/flicamera:latest
registry: hub:5000
registry_auth: {username: sdss, password: `+registryPassword+`}
enabled_nodes: [n1]
nodes:
  n1: {host: n1, port: 19995, docker-client: "tcp://n1:2375"}
`)
	for _, args := range [][]string{{"config", "show"}, {"config", "validate"}} {
		code, out, errOut := run(t, append([]string{"-c", path}, args...)...)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d, stderr %s", args, code, errOut)
		}
		if strings.Contains(out+errOut, registryPassword) {
			t.Errorf("%v shows the password:\n%s%s", args, out, errOut)
		}
	}
	_, out, _ := run(t, "-c", path, "config", "show")
	if !strings.Contains(out, "password: "+v1.Redacted) || !strings.Contains(out, "username: sdss") {
		t.Errorf("config show:\n%s", out)
	}
}

// TestDaemonNeverShowsThePasswordAndWarnsOnce runs the daemon with
// registry credentials and a plain-TCP node: neither its status (JSON and
// text) nor its log holds the password, and the log warns about the
// node once.
func TestDaemonNeverShowsThePasswordAndWarnsOnce(t *testing.T) {
	b := newBed(t)
	raw, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	b.config = writeFile(t, string(raw)+"registry_auth: {username: sdss, password: "+registryPassword+"}\n")
	logPath := filepath.Join(t.TempDir(), "fliswarm.log")
	if code, _, errOut := b.run("start", "--log", logPath); code != 0 {
		t.Fatalf("start: exit %d: %s%s", code, errOut, b.daemonOutput())
	}
	defer b.run("stop")

	var node v1.NodeStatus
	b.waitFor("status shows the plain-TCP warning", func() error {
		st, err := b.status()
		if err != nil {
			return err
		}
		if len(st.Nodes) != 1 || len(st.Nodes[0].Warnings) != 1 {
			return fmt.Errorf("nodes %+v", st.Nodes)
		}
		node = st.Nodes[0]
		return nil
	})
	if !strings.Contains(node.Warnings[0], "plain TCP gives root on n1 to anyone on the network") {
		t.Errorf("warning %q", node.Warnings[0])
	}
	if c := node.Condition(v1.ConditionEngineSecure); c == nil || c.Status || c.Reason != v1.ReasonPlainTCP {
		t.Errorf("EngineSecure condition %+v", c)
	}
	_, jsonOut, _ := b.run("status", "--json")
	_, textOut, _ := b.run("status")
	if !strings.Contains(textOut, "EngineSecure: PlainTCP") {
		t.Errorf("status does not show the warning:\n%s", textOut)
	}
	b.run("stop")
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for what, out := range map[string]string{"status --json": jsonOut, "status": textOut, "log": string(logged)} {
		if strings.Contains(out, registryPassword) {
			t.Errorf("%s shows the password:\n%s", what, out)
		}
	}
	if n := strings.Count(string(logged), "insecure engine connection"); n != 1 {
		t.Errorf("the log warns %d times about n1, want once:\n%s", n, logged)
	}
}
