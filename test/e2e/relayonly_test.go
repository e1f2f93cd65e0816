package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/test/testbed"
)

// TestRelayOnly: `fliswarm start --relay-only` (the actor bridge of
// `export kubernetes`) relays to cameras another system runs and never
// touches an engine: a camera that dies is reported, not restarted, and
// is ready again once restarted by that other system; reconnect,
// reconcile and logs are refused with what to do instead.
func TestRelayOnly(t *testing.T) {
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, nil)
	ids := converge(t, e) // the cameras, as Kubernetes would run them
	e.startArgs = []string{"--relay-only"}
	e.startDaemon()
	waitAllReady(t, e, time.Minute)

	victim := bed.Nodes[0]
	if out, stderr, code := e.run(30*time.Second, "send", "talk -n "+victim.Name+" ping"); code != 0 || !strings.Contains(out, "Pong") {
		t.Fatalf("talk through the relay-only daemon: exit %d\n%s%s", code, out, stderr)
	}
	for _, refused := range [][]string{{"send", "reconnect -n " + victim.Name}, {"reconcile", victim.Name}, {"logs", victim.Name}} {
		out, stderr, code := e.run(30*time.Second, refused...)
		if code == 0 || !strings.Contains(out+stderr, "--relay-only") || !strings.Contains(out+stderr, "kubectl") {
			t.Errorf("%q on a relay-only daemon: exit %d\n%s%s", refused, code, out, stderr)
		}
	}

	bed.Crash(t, victim.Name)
	e.eventually(30*time.Second, victim.Name+" reported down", func() error {
		st := nodeStatus(t, e, victim.Name)
		if st.Phase != v1.PhaseCameraNotConnected {
			return fmt.Errorf("phase %s", st.Phase)
		}
		return nil
	})
	// The other system restarts it; the relay follows.
	bed.Docker(t, victim.Name, "start", ids[victim.Name])
	waitAllReady(t, e, time.Minute)

	e.stopDaemon()
	log := e.log()
	for _, never := range []string{"engine call", "event stream requested", "reconcile\t"} {
		if strings.Contains(log, never) {
			t.Errorf("the relay-only daemon's log shows %q: it reached an engine\n%s", never, log)
		}
	}
	if !strings.Contains(log, "connected to camera") {
		t.Errorf("the daemon's log shows no camera connection (is its debug log there?)\n%s", log)
	}
}
