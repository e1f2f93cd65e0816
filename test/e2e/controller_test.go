package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

// eventLog records the container events of every bed node's engine from
// now until the test ends.
type eventLog struct {
	mu     sync.Mutex
	events map[string][]string // node → "action@time"
	times  map[string][]time.Time
	// barrier: see sync.
	barrier barrier
}

func watchEvents(t *testing.T, bed *testbed.Bed) *eventLog {
	t.Helper()
	l := &eventLog{events: map[string][]string{}, times: map[string][]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var streamErrs sync.Map
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		streamErrs.Range(func(node, err any) bool {
			t.Errorf("the event stream of %s ended during the test: %v (its events are incomplete)", node, err)
			return true
		})
	})
	for _, n := range bed.Nodes {
		evs, errc := subscribe(t, ctx, engineFor(t, n))
		wg.Go(func() {
			for ev := range evs {
				action := ev.Action
				switch {
				case l.barrier.observe(ev), ev.Type != "container":
					continue
				case ev.Name == "flicamera-"+n.Name+"-previous":
					// The camera a rollout replaced, kept until its
					// successor answers.
					action = "previous-" + action
				case ev.Name != "flicamera-"+n.Name:
					continue
				}
				l.mu.Lock()
				l.events[n.Name] = append(l.events[n.Name], action)
				l.times[n.Name] = append(l.times[n.Name], ev.Time)
				l.mu.Unlock()
			}
			if err := <-errc; err != nil && ctx.Err() == nil {
				streamErrs.Store(n.Name, err)
			}
		})
	}
	return l
}

// subscribe opens an engine's event stream and returns once the engine
// delivers on it: it makes probe volumes until one's event arrives (the
// subscription reaches the engine some time after Events returns). It
// fails the test when the stream ends or no probe event comes within a
// minute.
func subscribe(t *testing.T, ctx context.Context, eng *engine.Client) (<-chan engine.Event, <-chan error) {
	t.Helper()
	evs, errc := eng.Events(ctx)
	probes := map[string]bool{}
	defer func() {
		for p := range probes {
			_ = eng.RemoveVolume(context.Background(), p, true)
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for {
		select {
		case ev := <-evs:
			if probes[ev.Name] {
				return evs, errc
			}
		case err := <-errc:
			t.Fatalf("event stream ended before it delivered a probe: %v", err)
		case <-tick.C:
			p := fmt.Sprintf("fliswarm-e2e-probe-%d", time.Now().UnixNano())
			probes[p] = true
			if _, err := eng.CreateVolume(ctx, p, "", nil, nil); err != nil {
				t.Fatalf("probe volume: %v", err)
			}
		case <-deadline:
			t.Fatal("the event stream delivered no probe event within a minute")
		}
	}
}

// count is how many events of action node had.
func (l *eventLog) count(node, action string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.events[node] {
		if a == action {
			n++
		}
	}
	return n
}

// daemonCPU is the daemon's user+system CPU time so far.
func daemonCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.Atoi(f[11])
	st, _ := strconv.Atoi(f[12])
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
}

// setEnv sets (or, with nil, removes) one container environment variable
// in a configuration, keeping the others, and returns its old value.
func setEnv(cfg map[string]any, key string, value any) (old any) {
	env, _ := cfg["env"].(map[string]any)
	if env == nil {
		env = map[string]any{}
		cfg["env"] = env
	}
	old = env[key]
	if value == nil {
		delete(env, key)
	} else {
		env[key] = value
	}
	return old
}

func nodeStatus(t *testing.T, e *env, node string) v1.NodeStatus {
	t.Helper()
	st, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.Name == node {
			return n
		}
	}
	t.Fatalf("%s not in status", node)
	return v1.NodeStatus{}
}

// TestCrashLoopBacksOff: cameras that exit at start (an environment value
// the camera cannot use) are restarted at once the first time, then with a
// growing backoff: about 7 starts in the first minute, status
// shows CrashLoopBackOff with the exit code and the camera's last words,
// and the daemon stays cheap meanwhile.
func TestCrashLoopBacksOff(t *testing.T) {
	bed := testbed.Ensure(t)
	events := watchEvents(t, bed)
	e := newEnv(t, bed, func(cfg map[string]any) { setEnv(cfg, "FLICAMERA_EXPOSURE_SCALE", "fast") })
	e.startDaemon()
	started, pid := time.Now(), e.daemon.Process.Pid
	// The cold start is over once every camera has been seen crash
	// looping; the CPU is measured from then to the end of the first
	// minute (a measurement window: it stays a sleep).
	e.eventually(30*time.Second, "every node crash looping", func() error {
		for _, n := range bed.Nodes {
			if st := nodeStatus(t, e, n.Name); st.Phase != v1.PhaseCrashLoopBackOff {
				return fmt.Errorf("%s is %s", n.Name, st.Phase)
			}
		}
		return nil
	})
	cpu0, t0 := daemonCPU(t, pid), time.Now()
	time.Sleep(time.Until(started.Add(time.Minute)))
	cpu := float64(daemonCPU(t, pid)-cpu0) / float64(time.Since(t0))
	for _, n := range bed.Nodes {
		starts := events.count(n.Name, "start")
		t.Logf("%s: %d starts in the first minute", n.Name, starts)
		if starts < 3 || starts > 9 {
			t.Errorf("%s: %d starts in the first minute, want 3 to about 7 (the backoff of a camera that never comes up: 0.1 s quadrupling)", n.Name, starts)
		}
		st := nodeStatus(t, e, n.Name)
		if st.Phase != v1.PhaseCrashLoopBackOff || st.CrashLoop == nil || st.CrashLoop.LastExitCode != 2 ||
			!strings.Contains(strings.Join(st.CrashLoop.LastLog, "\n"), "FLICAMERA_EXPOSURE_SCALE") {
			t.Errorf("%s: status %s\n%s", n.Name, st.Phase, mustJSON(st.CrashLoop))
		}
	}
	t.Logf("daemon CPU during the crash loop: %.2f%% of a core", 100*cpu)
	if cpu > 0.02 {
		t.Errorf("daemon used %.2f%% of a core during the crash loop, want under 2%%", 100*cpu)
	}
	out, _, _ := e.run(30*time.Second, "status")
	if !strings.Contains(out, "CrashLoopBackOff") {
		t.Errorf("fliswarm status does not say CrashLoopBackOff:\n%s", out)
	}
	// The log has one line per attempt, not one per event.
	if lines := strings.Count(e.log(), "camera keeps stopping"); lines > 3*11 {
		t.Errorf("%d backoff log lines", lines)
	}
}

// TestBadEditHaltsRollout: an edit that makes every new camera exit at
// start takes down exactly one camera; the rollout halts there, that node
// goes back to the spec it ran, the other two cameras never stop, and
// status names the halt. A camera that never answers halts the same way
// after ready_timeout. Undoing the edit clears the halt with nothing to
// redo.
func TestBadEditHaltsRollout(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)
	applied(t, e, func(cfg map[string]any) { cfg["ready_timeout"] = 4 })
	hashes := runningCameras(t, bed, ids)
	for _, tc := range []struct{ name, key, value string }{
		{"exits at start", "FLICAMERA_EXPOSURE_SCALE", "fast"},
		{"never answers", "FLICAMERA_PORT", "19990"},
	} {
		events := watchEvents(t, bed)
		var orig any
		e.writeConfig(func(cfg map[string]any) { orig = setEnv(cfg, tc.key, tc.value) })
		var halted string
		e.eventually(45*time.Second, tc.name+": rollout halted", func() error {
			st, err := e.status()
			if err != nil {
				return err
			}
			for _, n := range st.Nodes {
				if n.Rollout != nil && n.Rollout.State == v1.RolloutHalted {
					if n.Phase != v1.PhaseRolloutHalted || !strings.Contains(n.Rollout.Message, "halted") {
						return fmt.Errorf("%s: phase %s, rollout %+v", n.Name, n.Phase, n.Rollout)
					}
					halted = n.Name
					return nil
				}
			}
			return fmt.Errorf("no halted node yet")
		})
		e.eventually(30*time.Second, tc.name+": halted node back on its old spec", func() error {
			c, err := runningContainer(t, bed.Node(t, halted))
			if err != nil {
				return err
			}
			if c.Labels[render.LabelSpecHash] != hashes[halted] {
				return fmt.Errorf("spec hash %s, want %s", c.Labels[render.LabelSpecHash], hashes[halted])
			}
			return nil
		})
		waitAllReadyOrHalted(t, e) // two reconciles of every node since
		for _, n := range bed.Nodes {
			c, err := runningContainer(t, n)
			if err != nil {
				t.Fatalf("%s: %s: %v", tc.name, n.Name, err)
			}
			if n.Name == halted {
				ids[n.Name] = c.ID
				continue
			}
			if c.ID != ids[n.Name] || events.count(n.Name, "die") > 0 {
				t.Errorf("%s: %s's camera was disturbed (die events %d)", tc.name, n.Name, events.count(n.Name, "die"))
			}
			if st := nodeStatus(t, e, n.Name); st.Rollout == nil || st.Rollout.State != v1.RolloutHeld || st.Rollout.HaltedNode != halted {
				t.Errorf("%s: %s rollout status %+v", tc.name, n.Name, st.Rollout)
			}
		}
		t.Logf("%s: halted on %s; events %v", tc.name, halted, events.events)
		if out, _, _ := e.run(30*time.Second, "status"); !strings.Contains(out, "RolloutHalted") {
			t.Errorf("fliswarm status does not name the halt:\n%s", out)
		}
		// Undo: the halt clears, nothing is recreated.
		e.writeConfig(func(cfg map[string]any) { setEnv(cfg, tc.key, orig) })
		waitAllReady(t, e, 30*time.Second)
		e.eventually(15*time.Second, tc.name+": halt cleared", func() error {
			for _, n := range bed.Nodes {
				if st := nodeStatus(t, e, n.Name); st.Rollout != nil {
					return fmt.Errorf("%s: rollout %+v", n.Name, st.Rollout)
				}
			}
			return nil
		})
		for _, n := range bed.Nodes {
			if c, err := runningContainer(t, n); err != nil || c.ID != ids[n.Name] {
				t.Errorf("%s: %s recreated after undoing the edit: %v", tc.name, n.Name, err)
			}
		}
	}
}

// TestReconnectDeadEngineAnswersFast: the actor's reconnect of a node
// whose Docker Engine is dead ends within seconds with the original's
// wording, and so does `fliswarm reconcile` of it.
func TestReconnectDeadEngineAnswersFast(t *testing.T) {
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)
	n := bed.Nodes[1]
	bed.KillEngine(t, n.Name)
	start := time.Now()
	out, _, code := e.run(30*time.Second, "send", "reconnect -n "+n.Name)
	took := time.Since(start)
	t.Logf("reconnect of a node with a dead engine: exit %d after %s", code, took.Round(time.Millisecond))
	if code != 1 || !strings.Contains(out, "is not connected") || took > 10*time.Second {
		t.Errorf("reconnect: exit %d after %s:\n%s", code, took, out)
	}
	start = time.Now()
	out, _, code = e.run(30*time.Second, "reconcile", n.Name)
	if took := time.Since(start); code == 0 || took > 10*time.Second || !strings.Contains(out, "not connected") {
		t.Errorf("reconcile: exit %d after %s:\n%s", code, took, out)
	}
}

// TestReconcileRefusesNodesNotEnabled: `fliswarm reconcile NODE` of a node
// that is configured but not enabled, or not configured at all, ends
// non-zero with the reason, through the daemon and without one, and
// creates no camera.
func TestReconcileRefusesNodesNotEnabled(t *testing.T) {
	bed := testbed.Ensure(t)
	off := bed.Nodes[len(bed.Nodes)-1]
	e := newEnv(t, bed, func(cfg map[string]any) {
		var on []any
		for _, n := range bed.Nodes[:len(bed.Nodes)-1] {
			on = append(on, n.Name)
		}
		cfg["enabled_nodes"] = on
	})
	check := func(how string) {
		out, errOut, code := e.run(time.Minute, "reconcile", off.Name)
		if code == 0 || !strings.Contains(out+errOut, "not enabled") {
			t.Errorf("%s: reconcile %s: exit %d\n%s%s", how, off.Name, code, out, errOut)
		}
		out, errOut, code = e.run(time.Minute, "reconcile", "nosuchnode")
		if code == 0 || !strings.Contains(out+errOut, "nosuchnode") {
			t.Errorf("%s: reconcile nosuchnode: exit %d\n%s%s", how, code, out, errOut)
		}
		if cs := managed(t, off); len(cs) != 0 {
			t.Errorf("%s: a camera was created on %s, which is not enabled", how, off.Name)
		}
	}
	check("without a daemon")
	e.startDaemon()
	check("through the daemon")
}

// TestPausedCameraIsUnpaused: a paused camera (its process frozen) is not
// reported ready; fliswarm unpauses it at once and says so in its log.
func TestPausedCameraIsUnpaused(t *testing.T) {
	bed := testbed.Ensure(t)
	e, ids := runningDaemon(t, bed)
	n := bed.Nodes[0]
	if out, err := dockerCLI(n.DockerHost, "pause", "flicamera-"+n.Name).CombinedOutput(); err != nil {
		t.Fatalf("docker pause: %v\n%s", err, out)
	}
	took := e.eventually(30*time.Second, "camera unpaused", func() error {
		c, err := runningContainer(t, n)
		if err != nil {
			return err
		}
		if c.State != "running" || c.ID != ids[n.Name] {
			return fmt.Errorf("container %s is %s", c.ID, c.State)
		}
		_, err = cameraStatus(n)
		return err
	})
	t.Logf("paused camera running again after %s", took.Round(time.Millisecond))
	if !strings.Contains(e.log(), `"action": "unpause-container"`) {
		t.Errorf("the unpause is not in the log")
	}
	waitAllReady(t, e, 30*time.Second)
}

// TestImageChangeWaitsForTheExposure: an image change while `talk expose`
// runs on one camera replaces the other cameras, and that one only once
// its exposure has ended; status says why it waits.
func TestImageChangeWaitsForTheExposure(t *testing.T) {
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)
	n := bed.Nodes[0]
	c := dialActor(t, e)
	// The bed's cameras expose 5 times faster: 25 s take 5 s.
	done := sendSeen(t, c, "talk -n "+n.Name+" expose 25", time.Minute, integrating(n.Name))
	events := watchEvents(t, bed)
	e.writeConfig(func(cfg map[string]any) { cfg["image"] = bed.ImageV2 })
	e.eventually(30*time.Second, "update pending on the exposing camera", func() error {
		st := nodeStatus(t, e, n.Name)
		if st.Rollout == nil || !strings.Contains(st.Rollout.Message, "camera exposing") {
			return fmt.Errorf("rollout %+v", st.Rollout)
		}
		return nil
	})
	var r sent
	select {
	case r = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the exposure did not end")
	}
	if r.err != nil || r.final.Code != opscore.Done {
		t.Errorf("the exposure was interrupted: %v %v", r.final, r.err)
	}
	waitImage(t, e, bed, bed.ImageV2Ref, time.Minute)
	events.sync(t, bed)
	events.mu.Lock()
	defer events.mu.Unlock()
	for i, a := range events.events[n.Name] {
		if (a == "kill" || a == "die") && events.times[n.Name][i].Before(r.end.Add(-time.Second)) {
			t.Errorf("%s's camera was stopped at %s, before its exposure ended at %s", n.Name,
				events.times[n.Name][i].Format("15:04:05.000"), r.end.Format("15:04:05.000"))
		}
	}
	t.Logf("exposure ended %s; %s events %v at %v", r.end.Format("15:04:05.000"), n.Name, events.events[n.Name], events.times[n.Name])
}
