package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/test/testbed"
)

// TestEventsOfACrashAndARollout: `fliswarm events gfa1` after a crash
// (hack/testbed crash) and a rollout (an edit of the environment) lists
// them in order, with their reasons; a follower started before the crash
// sees it as it happens; an unknown node and a daemon that is not running
// end non-zero with a clear message, at once.
func TestEventsOfACrashAndARollout(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)
	victim := bed.Nodes[0].Name

	// A follower of the victim's events, from before the crash.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	follow := exec.CommandContext(ctx, fliswarmBin(t), "-c", e.config, "--run-dir", e.runDir, "events", victim, "-f", "-o", "json")
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = follow.Process.Kill(); _ = follow.Wait() }()
	followed := make(chan v1.Event, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev v1.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				followed <- ev
			}
		}
		close(followed)
	}()
	// The events kept are sent first; wait for the stream to be up (the
	// adoption or the start of the daemon's first pass is in it).
	waitFollowed(t, followed, 30*time.Second, func(ev v1.Event) bool { return ev.Node == victim })

	bed.Crash(t, victim)
	crash := waitFollowed(t, followed, 30*time.Second, func(ev v1.Event) bool { return ev.Reason == v1.ReasonCrashed })
	if crash.Type != v1.EventWarning || !strings.Contains(crash.Message, "exit code 137") {
		t.Errorf("the crash as followed: %+v", crash)
	}
	waitFollowed(t, followed, 30*time.Second, func(ev v1.Event) bool { return ev.Reason == v1.ReasonReady })
	waitAllReady(t, e, time.Minute)

	applied(t, e, func(cfg map[string]any) { setEnv(cfg, "FLISWARM_E2E_EVENTS", "1") })
	e.eventually(2*time.Minute, "every camera runs the edited configuration", func() error {
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				return err
			}
			if c.ID == ids[n.Name] {
				return fmt.Errorf("%s still runs %s", n.Name, c.ID[:12])
			}
		}
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.Phase != v1.PhaseReady || n.Rollout != nil {
				return fmt.Errorf("%s: %s", n.Name, n.Phase)
			}
		}
		return nil
	})

	stdout, stderr, code := e.run(30*time.Second, "events", victim)
	if code != 0 {
		t.Fatalf("events %s: exit %d: %s", victim, code, stderr)
	}
	requireInOrder(t, stdout, "Crashed", "exit code 137", "Started", "Ready",
		"RolloutStarted", "spec changed", "Created", "Started", "Ready")
	if strings.Contains(stdout, "  gfa2  ") || strings.Contains(stdout, "  fvc  ") {
		t.Errorf("events %s shows other nodes' events:\n%s", victim, stdout)
	}
	// The same as JSON at /events? (the bed's daemon has no status page:
	// the control socket's JSON lines are the same events.)
	jsonOut, _, code := e.run(30*time.Second, "events", victim, "-o", "json", "--since", "10m")
	if code != 0 || !strings.Contains(jsonOut, `"reason":"RolloutStarted"`) {
		t.Errorf("events -o json: exit %d\n%s", code, jsonOut)
	}
	// fliswarm's own: the configuration accepted.
	all, _, _ := e.run(30*time.Second, "events")
	if !strings.Contains(all, "ConfigAccepted") {
		t.Errorf("events (all) lacks the configuration accepted:\n%s", all)
	}

	start := time.Now()
	if _, stderr, code := e.run(30*time.Second, "events", "nope"); code == 0 || !strings.Contains(stderr, "nope is not configured") {
		t.Errorf("events nope: exit %d, %q", code, stderr)
	}
	e.stopDaemon()
	if _, stderr, code := e.run(30*time.Second, "events", victim); code != 4 || !strings.Contains(stderr, "no daemon is running") {
		t.Errorf("events without a daemon: exit %d, %q", code, stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the two refusals took %s", d)
	}
}

// waitFollowed reads followed events until one matches.
func waitFollowed(t *testing.T, followed <-chan v1.Event, timeout time.Duration, match func(v1.Event) bool) v1.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-followed:
			if !ok {
				t.Fatal("events -f ended")
			}
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("events -f: no matching event within %s", timeout)
		}
	}
}

// requireInOrder fails unless each of want appears in out after the
// previous one.
func requireInOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q not found in order (after the ones before it) in:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}
