package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/test/testbed"
)

// TestSecureEngines runs the daemon against a bed with TLS and ssh nodes
// (TESTBED_TLS_NODES, TESTBED_SSH_NODES) beside plain ones: every node is
// managed alike (camera running, status ready, a crashed camera brought
// back through the engine's event stream), the TLS and ssh nodes are
// secure, and each plain node is warned about, once in the log and once
// in its status.
func TestSecureEngines(t *testing.T) {
	bed := testbed.Ensure(t)
	tlsNodes, sshNodes := bed.NodesOfKind(testbed.KindTLS), bed.NodesOfKind(testbed.KindSSH)
	plain := bed.NodesOfKind(testbed.KindPlain)
	if len(tlsNodes) == 0 || len(sshNodes) == 0 {
		t.Skip("the bed has no TLS or no ssh node: set TESTBED_TLS_NODES and TESTBED_SSH_NODES (see hack/testbed-secure.bash)")
	}
	resetBed(t, bed, false)
	e := newEnv(t, bed, nil)
	e.startDaemon()

	e.eventually(2*time.Minute, "every node ready", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range bed.Nodes {
			found, ready, _, _, lastErr := statusOf(st, n.Name)
			if !found || !ready {
				return fmt.Errorf("%s (%s) not ready: %s\n%s", n.Name, n.Kind, lastErr, mustJSON(st))
			}
			if _, err := runningContainer(t, n); err != nil {
				return err
			}
		}
		return nil
	})

	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range st.Nodes {
		n := bed.Node(t, ns.Name)
		c := ns.Condition(v1.ConditionEngineSecure)
		switch n.Kind {
		case testbed.KindPlain:
			want := "plain TCP gives root on " + n.Name + " to anyone on the network"
			if len(ns.Warnings) != 1 || !strings.Contains(ns.Warnings[0], want) {
				t.Errorf("%s: warnings %q, want one containing %q", n.Name, ns.Warnings, want)
			}
			if c == nil || c.Status || c.Reason != v1.ReasonPlainTCP {
				t.Errorf("%s: EngineSecure %+v, want False/PlainTCP", n.Name, c)
			}
		default:
			if len(ns.Warnings) != 0 || c == nil || !c.Status {
				t.Errorf("%s (%s): warnings %q, EngineSecure %+v; want none and True", n.Name, n.Kind, ns.Warnings, c)
			}
			if ns.DockerHost != n.DockerHost {
				t.Errorf("%s: dockerHost %q, want %q", n.Name, ns.DockerHost, n.DockerHost)
			}
		}
	}

	// A crash on a TLS and on an ssh node is undone like on a plain one:
	// the event streams over TLS and ssh work.
	for _, n := range []testbed.Node{tlsNodes[0], sshNodes[0]} {
		before, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		bed.Crash(t, n.Name)
		took := e.eventually(30*time.Second, n.Name+" camera restarted", func() error {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if !c.StartedAt.After(before.StartedAt) {
				return fmt.Errorf("not restarted yet")
			}
			return nil
		})
		t.Logf("kill -9 on %s (%s) undone in %s", n.Name, n.Kind, took.Round(time.Millisecond))
	}

	e.stopDaemon()
	log := e.log()
	for _, n := range plain {
		if c := strings.Count(log, `"node": "`+n.Name+`", "warning": "plain TCP`); c != 1 {
			t.Errorf("the log warns %d times about %s, want once", c, n.Name)
		}
	}
	for _, n := range append(tlsNodes, sshNodes...) {
		if strings.Contains(log, "gives root on "+n.Name+" ") {
			t.Errorf("the log warns about %s (%s)", n.Name, n.Kind)
		}
	}
}
