package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

// applied writes the configuration and waits until the daemon runs the
// new revision.
func applied(t *testing.T, e *env, mutate func(cfg map[string]any)) {
	t.Helper()
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	old := st.Daemon.Revision
	e.writeConfig(mutate)
	e.eventually(30*time.Second, "the daemon runs the edited configuration", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		if st.Daemon.Revision == old || st.Daemon.ConfigError != "" {
			return fmt.Errorf("revision %s, config error %q", st.Daemon.Revision, st.Daemon.ConfigError)
		}
		return nil
	})
}

// haltedAsBefore waits until the (restarted) daemon's status says the
// rollout is halted on node for reason, the others held, and every camera
// runs the spec it ran before the edit (hashes).
func haltedAsBefore(t *testing.T, e *env, bed *testbed.Bed, node, reason string, hashes map[string]string) {
	t.Helper()
	e.eventually(60*time.Second, "status says RolloutHalted on "+node+" and every camera runs", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			switch {
			case n.Rollout == nil:
				return fmt.Errorf("%s: no rollout status", n.Name)
			case n.Name == node && (n.Phase != v1.PhaseRolloutHalted || n.Rollout.State != v1.RolloutHalted || !strings.Contains(n.Rollout.Message, reason)):
				return fmt.Errorf("%s: phase %s, rollout %+v; want RolloutHalted because %q", n.Name, n.Phase, n.Rollout, reason)
			case n.Name != node && (n.Rollout.State != v1.RolloutHeld || n.Rollout.HaltedNode != node):
				return fmt.Errorf("%s: rollout %+v, want held by %s", n.Name, n.Rollout, node)
			case !n.DeviceConnected:
				return fmt.Errorf("%s: camera not connected", n.Name)
			}
		}
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if c.Labels[render.LabelSpecHash] != hashes[n.Name] {
				return fmt.Errorf("%s runs spec %s, want %s", n.Name, c.Labels[render.LabelSpecHash], hashes[n.Name])
			}
		}
		return nil
	})
}

// TestHaltedRolloutSurvivesRestart: a breaking edit halts the rollout on
// one node, which goes back to the camera it ran; fliswarm killed with -9
// and started again, then stopped with `fliswarm stop` and started again,
// finds the halt recorded on that node: status still says RolloutHalted
// with the reason, every camera runs what it ran, and no camera is
// stopped or started by the restarted daemon. Undoing the edit removes
// the record.
func TestHaltedRolloutSurvivesRestart(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)
	applied(t, e, func(cfg map[string]any) { cfg["ready_timeout"] = 4 })
	hashes := runningCameras(t, bed, ids)

	var orig any
	applied(t, e, func(cfg map[string]any) { orig = setEnv(cfg, "FLICAMERA_EXPOSURE_SCALE", "fast") })
	const reason = "exited with code"
	var halted string
	e.eventually(45*time.Second, "rollout halted", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.Rollout != nil && n.Rollout.State == v1.RolloutHalted {
				halted = n.Name
				return nil
			}
		}
		return fmt.Errorf("no halted node yet")
	})
	haltedAsBefore(t, e, bed, halted, reason, hashes)
	record := "flicamera-" + halted + "-halted"
	if out, err := bed.TryDocker(halted, "inspect", "-f", "{{.State.Status}} {{index .Config.Labels \"org.sdss.fliswarm.halt-reason\"}}", record); err != nil ||
		!strings.HasPrefix(out, "created ") || !strings.Contains(out, reason) {
		t.Fatalf("halt record %s on %s: %v %s", record, halted, err, out)
	}
	for _, n := range bed.Nodes {
		c, _ := runningContainer(t, n)
		ids[n.Name] = c.ID
	}

	for _, restart := range []struct {
		name string
		do   func()
	}{
		{"kill -9", func() {
			if err := e.daemon.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-e.exited
			e.daemon = nil
		}},
		{"fliswarm stop", func() {
			if _, _, code := e.run(60*time.Second, "stop"); code != 0 {
				t.Fatalf("fliswarm stop: exit %d", code)
			}
			select {
			case <-e.exited:
			case <-time.After(30 * time.Second):
				t.Fatal("the daemon did not exit after fliswarm stop")
			}
			e.daemon = nil
		}},
	} {
		events := watchEvents(t, bed)
		restart.do()
		e.startDaemon()
		haltedAsBefore(t, e, bed, halted, reason, hashes)
		// The daemon has read every node (status above); its resyncs and
		// reconciles since have left every camera as it was.
		waitAllReadyOrHalted(t, e)
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				t.Fatalf("after %s: %v", restart.name, err)
			}
			if c.ID != ids[n.Name] || events.count(n.Name, "die") > 0 || events.count(n.Name, "start") > 0 {
				t.Errorf("after %s: %s's camera was disturbed (id %s → %s, events %v)", restart.name, n.Name,
					ids[n.Name][:12], c.ID[:12], events.events[n.Name])
			}
		}
	}

	// Undo: the halt and its record go, nothing is recreated.
	applied(t, e, func(cfg map[string]any) { setEnv(cfg, "FLICAMERA_EXPOSURE_SCALE", orig) })
	waitAllReady(t, e, 30*time.Second)
	e.eventually(30*time.Second, "halt record removed", func() error {
		out, err := bed.TryDocker(halted, "ps", "-a", "--filter", "name=^/flicamera-", "--format", "{{.Names}}")
		if err != nil {
			return err
		}
		if out != "flicamera-"+halted {
			return fmt.Errorf("containers on %s: %q", halted, out)
		}
		return nil
	})
	for _, n := range bed.Nodes {
		if c, err := runningContainer(t, n); err != nil || c.ID != ids[n.Name] {
			t.Errorf("%s recreated after undoing the edit: %v", n.Name, err)
		}
	}
}

// waitAllReadyOrHalted waits until every node has been reconciled at
// least twice by the running daemon (its status converged with nothing
// left to do), so that a camera it would disturb has been.
func waitAllReadyOrHalted(t *testing.T, e *env) {
	t.Helper()
	first := map[string]time.Time{}
	e.eventually(30*time.Second, "two reconciles of every node", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			c := n.Condition(v1.ConditionConverged)
			if c == nil || !c.Status {
				return fmt.Errorf("%s: not converged: %+v", n.Name, c)
			}
			if first[n.Name].IsZero() {
				first[n.Name] = n.ObservedAt
			}
			if !n.ObservedAt.After(first[n.Name]) {
				return fmt.Errorf("%s: observed once since", n.Name)
			}
		}
		return nil
	})
}
