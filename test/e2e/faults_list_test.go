package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// faults is the matrix's list, in the order they run. Faults that make a
// camera crash use different nodes, so that one's crash-loop count does
// not slow another's recovery.
func faults(bed *testbed.Bed) []fault {
	g1, g2, fv := bed.Nodes[0].Name, bed.Nodes[1].Name, bed.Nodes[2].Name
	return []fault{
		{name: "container removed (docker rm -f)", node: g1, recreate: []string{g1},
			inject: func(m *matrix) error { return m.docker(g1, "rm", "-f", "flicamera-"+g1) }},
		{name: "container crashed 5 times in a row", node: g1, inject: func(m *matrix) error {
			for i := range 5 {
				m.mark()
				m.bed.Crash(m.t, g1)
				if err := m.waitCamera(g1, 60*time.Second); err != nil {
					return fmt.Errorf("crash %d: %w", i+1, err)
				}
			}
			return nil
		}},
		{name: "engine killed and restarted", node: g1, inject: func(m *matrix) error {
			m.bed.KillEngine(m.t, g1)
			return m.waitPhase(g1, v1.PhaseEngineDown, 30*time.Second)
		}, heal: func(m *matrix) error { m.bed.StartEngine(m.t, g1); return nil }},
		{name: "crash loop at start (bad node env)", node: g2, recreate: []string{g2}, inject: func(m *matrix) error {
			m.send("disable " + g2)
			if err := m.docker(g2, "rm", "-f", "flicamera-"+g2); err != nil {
				return err
			}
			if err := m.edit(func(cfg map[string]any) { setNodeEnv(cfg, g2, "FLICAMERA_EXPOSURE_SCALE", "fast") }); err != nil {
				return err
			}
			events := watchEvents(m.t, m.bed)
			m.send("enable " + g2)
			if err := m.waitPhase(g2, v1.PhaseCrashLoopBackOff, 30*time.Second); err != nil {
				return err
			}
			time.Sleep(20 * time.Second)
			starts := events.count(g2, "start")
			m.note("%d starts in its first 20 s", starts)
			// The camera never comes up, so 0.1 s quadrupling: starts at
			// 0, 0, 0.1, 0.5, 2.1 and 8.5 s; a hot loop would start it 5
			// times a second.
			if starts > 8 {
				return fmt.Errorf("%d starts in 20 s: not backed off", starts)
			}
			return nil
		}, heal: func(m *matrix) error {
			m.e.writeConfig(func(cfg map[string]any) { setNodeEnv(cfg, g2, "FLICAMERA_EXPOSURE_SCALE", nil) })
			return nil
		}},
		{name: "config edit that breaks the camera", node: "", inject: func(m *matrix) error {
			m.e.writeConfig(func(cfg map[string]any) { setEnv(cfg, "FLICAMERA_EXPOSURE_SCALE", "fast") })
			halted, err := m.waitHalt(60 * time.Second)
			if err != nil {
				return err
			}
			m.extraRecreate, m.statusNode = []string{halted}, halted
			m.note("halted on %s", halted)
			return m.waitCamera(halted, 60*time.Second) // put back
		}, heal: func(m *matrix) error {
			m.e.writeConfig(func(cfg map[string]any) { setEnv(cfg, "FLICAMERA_EXPOSURE_SCALE", "0.2") })
			return nil
		}},
		{name: "volume removed (camera disabled meanwhile)", node: fv, recreate: []string{fv}, inject: func(m *matrix) error {
			// A volume in use cannot be removed: take the camera away
			// first, keeping fliswarm from bringing it back meanwhile.
			m.send("disable " + fv)
			if err := m.docker(fv, "rm", "-f", "flicamera-"+fv); err != nil {
				return err
			}
			if err := m.docker(fv, "volume", "rm", "-f", "data"); err != nil {
				return err
			}
			m.mark()
			m.send("enable " + fv)
			return nil
		}},
		{name: "image removed", node: fv, inject: func(m *matrix) error {
			if err := m.docker(fv, "image", "rm", "-f", m.bed.ImageRef); err != nil {
				return err
			}
			return m.eventually(30*time.Second, func() error {
				return m.docker(fv, "image", "inspect", m.bed.ImageRef)
			})
		}},
		{name: "node partitioned and healed, a talk in flight", node: fv, inject: func(m *matrix) error {
			talk, under := m.sendAsyncSeen("talk -n "+fv+" expose 25", integrating(fv))
			if err := m.underWay(talk, under); err != nil {
				return err
			}
			m.bed.Partition(m.t, fv)
			if err := m.waitReply(talk, 30*time.Second); err != nil {
				return err
			}
			return m.waitPhase(fv, v1.PhaseUnreachable, 30*time.Second)
		}, heal: func(m *matrix) error { m.bed.Heal(m.t, fv); return nil }},
		{name: "registry down during an image change", node: g1, recreate: []string{g1, g2, fv}, inject: func(m *matrix) error {
			events := watchEvents(m.t, m.bed)
			m.bed.StopRegistry(m.t)
			if err := m.edit(func(cfg map[string]any) { cfg["image"] = m.bed.ImageV2 }); err != nil {
				return err
			}
			// The daemon tried the new image and its pull failed: only
			// then is "the cameras were not disturbed" worth checking.
			var failed string
			if err := m.eventually(60*time.Second, func() error {
				st, err := m.e.status()
				if err != nil {
					return err
				}
				for _, n := range st.Nodes {
					if c := n.Condition(v1.ConditionImageReady); c != nil && !c.Status && c.Reason == v1.ReasonPullFailed && c.LastTransitionTime.After(m.faultAt) {
						failed = n.Name
						return nil
					}
				}
				return errors.New("no node's pull of the new image failed")
			}); err != nil {
				return err
			}
			m.note("pull failed on %s", failed)
			events.sync(m.t, m.bed)
			for _, n := range m.bed.Nodes {
				if k := events.anyOf(n.Name, "kill", "die", "stop", "destroy", "rename",
					"previous-kill", "previous-die", "previous-stop", "previous-destroy"); k > 0 {
					return fmt.Errorf("a registry outage disturbed %s's camera: %v", n.Name, events.actions(n.Name))
				}
			}
			if err := m.healthy(); err != nil {
				return fmt.Errorf("a registry outage disturbed the cameras: %w", err)
			}
			return nil
		}, heal: func(m *matrix) error { m.bed.StartRegistry(m.t); return m.waitImage(m.bed.ImageV2Ref) }},
		{name: "image change during an exposure", node: g1, recreate: []string{g1, g2, fv}, inject: func(m *matrix) error {
			talk, under := m.sendAsyncSeen("talk -n "+g1+" expose 25", integrating(g1))
			if err := m.underWay(talk, under); err != nil {
				return err
			}
			m.e.writeConfig(func(cfg map[string]any) { cfg["image"] = m.bed.Image })
			r := <-talk
			if r.err != nil || r.final.Code != opscore.Done {
				return fmt.Errorf("the exposure was interrupted: %v %v", r.final, r.err)
			}
			return m.waitImage(m.bed.ImageRef)
		}},
		{name: "bad config edit", node: g1, inject: func(m *matrix) error {
			good, _ := os.ReadFile(m.e.config)
			if err := os.WriteFile(m.e.config, append(good, []byte("\nping_timeout: fast\n: : :\n")...), 0o644); err != nil {
				return err
			}
			if err := m.waitConfigError("", 15*time.Second); err != nil {
				return err
			}
			return os.WriteFile(m.e.config, good, 0o644)
		}},
		{name: "config file deleted", node: g1, inject: func(m *matrix) error {
			good, _ := os.ReadFile(m.e.config)
			if err := os.Remove(m.e.config); err != nil {
				return err
			}
			if err := m.waitConfigError("deleted", 15*time.Second); err != nil {
				return err
			}
			return os.WriteFile(m.e.config, good, 0o644)
		}},
		{name: "fliswarm killed with -9 and restarted", node: g1, quiet: true, inject: func(m *matrix) error {
			_ = m.e.daemon.Process.Kill()
			<-m.e.exited
			m.e.daemon = nil
			m.e.startDaemon()
			return nil
		}},
		{name: "camera paused", node: g2, inject: func(m *matrix) error {
			return m.docker(g2, "pause", "flicamera-"+g2)
		}},
		{name: "camera hung (sim-hang)", node: g2, inject: func(m *matrix) error {
			return m.waitReply(m.sendAsync("talk -n "+g2+" sim-hang"), 30*time.Second)
		}},
		{name: "stray process on a node's camera port", node: g1, recreate: []string{g1}, inject: func(m *matrix) error {
			m.send("disable " + g1)
			if err := m.docker(g1, "rm", "-f", "flicamera-"+g1); err != nil {
				return err
			}
			if err := m.docker(g1, "run", "-d", "--name", "stray", "--network", "host", "-e", "ACTOR_NAME=stray",
				"-e", "FLICAMERA_DATA_DIR=/tmp", m.bed.ImageRef); err != nil {
				return err
			}
			enabled := time.Now()
			m.send("enable " + g1)
			// The daemon looked at the node since, and its camera client
			// met the stray on the port.
			var st v1.NodeStatus
			if err := m.eventually(60*time.Second, func() error {
				st = m.status(g1)
				if !st.ObservedAt.After(enabled) || st.CameraMessage == "" {
					return fmt.Errorf("%s observed at %s, camera message %q, phase %s", g1, st.ObservedAt.Format(time.StampMilli), st.CameraMessage, st.Phase)
				}
				return nil
			}); err != nil {
				return err
			}
			m.note("camera message %q", st.CameraMessage)
			if st.Ready() {
				return fmt.Errorf("%s is ready with a stray actor on its port", g1)
			}
			m.note("status said %s", st.Phase)
			if r := <-m.sendAsync("talk -n " + g1 + " status"); r.err == nil && strings.Contains(strings.Join(r.lines, "\n"), "stray") {
				return fmt.Errorf("the stray actor's replies were relayed as %s's", g1)
			}
			return nil
		}, heal: func(m *matrix) error { return m.docker(g1, "rm", "-f", "stray") }},
		{name: "1,000 malformed actor lines", node: g1, nothingDown: true, inject: func(m *matrix) error { return m.malformed(1000) }},
		{name: "50 concurrent actor clients × 20 commands", node: g1, nothingDown: true, inject: func(m *matrix) error { return m.concurrent(50, 20) }},
		{name: "a user disconnecting during a flood", node: g2, nothingDown: true, inject: func(m *matrix) error { return m.leaverFlood(g2) }},
		{name: "a client that stops reading during a flood", node: fv, nothingDown: true, inject: func(m *matrix) error { return m.stuckFlood(fv) }},
	}
}

// setNodeEnv sets (nil: removes) one variable of a node's own env.
func setNodeEnv(cfg map[string]any, node, key string, value any) {
	n := cfg["nodes"].(map[string]any)[node].(map[string]any)
	env, _ := n["env"].(map[string]any)
	if env == nil {
		env = map[string]any{}
	}
	if value == nil {
		delete(env, key)
	} else {
		env[key] = value
	}
	if len(env) == 0 {
		delete(n, "env")
	} else {
		n["env"] = env
	}
}

func (m *matrix) docker(node string, args ...string) error {
	n := m.bed.Node(m.t, node)
	if out, err := dockerCLI(n.DockerHost, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (m *matrix) eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *matrix) status(node string) v1.NodeStatus {
	st, err := m.e.status()
	if err == nil {
		for _, n := range st.Nodes {
			if n.Name == node {
				return n
			}
		}
	}
	return v1.NodeStatus{}
}

// edit writes an edit of the configuration and returns once the daemon
// reports a new revision: the edit is loaded.
func (m *matrix) edit(f func(cfg map[string]any)) error {
	st, err := m.e.status()
	if err != nil {
		return err
	}
	before := st.Daemon.Revision
	m.e.writeConfig(f)
	return m.eventually(30*time.Second, func() error {
		st, err := m.e.status()
		if err != nil {
			return err
		}
		if st.Daemon.Revision == before || st.Daemon.ConfigError != "" {
			return fmt.Errorf("revision %s, config error %q: the edit is not loaded", st.Daemon.Revision, st.Daemon.ConfigError)
		}
		return nil
	})
}

func (m *matrix) waitPhase(node, phase string, timeout time.Duration) error {
	return m.eventually(timeout, func() error {
		if p := m.status(node).Phase; p != phase {
			return fmt.Errorf("%s is %s, not %s", node, p, phase)
		}
		return nil
	})
}

func (m *matrix) waitCamera(node string, timeout time.Duration) error {
	return m.eventually(timeout, func() error {
		_, err := cameraStatus(m.bed.Node(m.t, node))
		return err
	})
}

func (m *matrix) waitHalt(timeout time.Duration) (string, error) {
	var halted string
	err := m.eventually(timeout, func() error {
		st, err := m.e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.Rollout != nil && n.Rollout.State == v1.RolloutHalted {
				halted = n.Name
				return nil
			}
		}
		return errors.New("no rollout halted")
	})
	return halted, err
}

func (m *matrix) waitImage(ref string) error {
	return m.eventually(2*time.Minute, func() error {
		for _, n := range m.bed.Nodes {
			c, err := runningContainer(m.t, n)
			if err != nil {
				return err
			}
			if c.Image != ref {
				return fmt.Errorf("%s runs %s", n.Name, c.Image)
			}
		}
		return nil
	})
}

func (m *matrix) waitConfigError(want string, timeout time.Duration) error {
	return m.eventually(timeout, func() error {
		st, err := m.e.status()
		if err != nil {
			return err
		}
		if st.Daemon.ConfigError == "" || !strings.Contains(st.Daemon.ConfigError, want) {
			return fmt.Errorf("config error %q", st.Daemon.ConfigError)
		}
		return nil
	})
}

type reply struct {
	final opscore.Reply
	lines []string
	err   error
}

// sendAsync sends an actor command on a new connection and delivers its
// outcome; a command with no terminal reply within a minute is counted.
func (m *matrix) sendAsync(body string) <-chan reply {
	out, _ := m.sendAsyncSeen(body, nil)
	return out
}

// sendAsyncSeen is sendAsync that also closes under once a reply for which
// seen holds arrives: the evidence that the command is under way.
func (m *matrix) sendAsyncSeen(body string, seen func(opscore.Reply) bool) (<-chan reply, <-chan struct{}) {
	out := make(chan reply, 1)
	under := make(chan struct{})
	var once sync.Once
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := opscore.Dial(ctx, m.e.actor)
		if err != nil {
			out <- reply{err: err}
			return
		}
		defer c.Close()
		var mu sync.Mutex
		var lines []string
		final, err := c.Send(ctx, body, func(r opscore.Reply) {
			mu.Lock()
			lines = append(lines, r.String())
			mu.Unlock()
			if seen != nil && seen(r) {
				once.Do(func() { close(under) })
			}
		})
		if err != nil {
			m.unanswered.Add(1)
		}
		mu.Lock()
		out <- reply{final: final, lines: lines, err: err}
		mu.Unlock()
	}()
	return out, under
}

// underWay waits for a command of sendAsyncSeen to be seen under way.
func (m *matrix) underWay(out <-chan reply, under <-chan struct{}) error {
	select {
	case <-under:
		return nil
	case r := <-out:
		return fmt.Errorf("the command ended before it was seen under way: %v %v %v", r.final, r.err, r.lines)
	case <-time.After(30 * time.Second):
		return errors.New("the command was not seen under way within 30 s")
	}
}

func (m *matrix) send(body string) { <-m.sendAsync(body) }

func (m *matrix) waitReply(ch <-chan reply, timeout time.Duration) error {
	select {
	case r := <-ch:
		if r.err != nil {
			return fmt.Errorf("no terminal reply: %w", r.err)
		}
		m.note("the command ended with %q", r.final.Code.String())
		return nil
	case <-time.After(timeout):
		m.unanswered.Add(1)
		return fmt.Errorf("no terminal reply within %s", timeout)
	}
}

// dialRawQuiet is dialRaw that returns nil instead of failing the test.
func dialRawQuiet(e *env) *rawUser {
	conn, err := net.DialTimeout("tcp", e.actor, 5*time.Second)
	if err != nil {
		return nil
	}
	u := &rawUser{conn: conn, done: make(chan struct{})}
	br := bufio.NewReader(conn)
	go func() {
		defer close(u.done)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				u.err = err
				return
			}
			if f := strings.Fields(l); len(f) > 0 && strings.Contains(l, "yourUserID=") {
				u.mu.Lock()
				u.uid = f[0]
				u.mu.Unlock()
			}
			u.mu.Lock()
			u.others = append(u.others, strings.TrimSuffix(l, "\n"))
			u.mu.Unlock()
		}
	}()
	return u
}
