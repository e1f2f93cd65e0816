package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/control"
	fsengine "github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// fliswarmBin is the binary under test: $FLISWARM_BIN (set by make), else
// built once into a temporary directory.
func fliswarmBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FLISWARM_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fliswarm-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "fliswarm")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/fliswarm")
		root, err := testbed.RepoRoot()
		if err != nil {
			binErr = err
			return
		}
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// env is a fliswarm set-up for one test: its own copy of the bed's
// configuration (with a free actor port and no log dir) and run dir.
type env struct {
	t       testing.TB
	bed     *testbed.Bed
	dir     string
	config  string
	runDir  string
	actor   string
	daemon  *exec.Cmd
	logPath string
	exited  chan error

	// http is the address of the daemon's status page and metrics.
	http string
	// mode is how startDaemon runs the daemon: "--debug" (default,
	// readable debug logs) or "--foreground" (JSON logs at info level,
	// as the service runs it).
	mode string
	// startArgs are more arguments of `fliswarm start`.
	startArgs []string
}

func newEnv(t testing.TB, bed *testbed.Bed, mutate func(cfg map[string]any)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, bed: bed, dir: dir, config: filepath.Join(dir, "fliswarm.yaml"), runDir: filepath.Join(dir, "run")}
	// Leave the bed without cameras for the next test. Cleanups run last
	// first: the daemon (registered below) is stopped before this runs.
	t.Cleanup(func() { removeCameras(t, bed) })
	port := freePort(t)
	e.actor = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	e.http = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	e.writeConfig(func(cfg map[string]any) {
		actor := cfg["actor"].(map[string]any)
		actor["port"] = port
		actor["log_dir"] = false
		cfg["http"] = e.http
		cfg["resync_interval"] = 5
		if mutate != nil {
			mutate(cfg)
		}
	})
	t.Cleanup(func() { e.stopDaemon() })
	return e
}

// writeConfig rewrites the test's configuration from the bed's, with
// mutate applied.
func (e *env) writeConfig(mutate func(cfg map[string]any)) {
	e.t.Helper()
	raw, err := os.ReadFile(e.bed.ConfigPath)
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		e.t.Fatal(err)
	}
	if old, err := os.ReadFile(e.config); err == nil {
		// Keep what earlier writes set (actor port, ...).
		var prev map[string]any
		if yaml.Unmarshal(old, &prev) == nil {
			cfg = prev
		}
	}
	mutate(cfg)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	tmp := e.config + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.config); err != nil {
		e.t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// run runs the fliswarm binary with this env's config and run dir.
func (e *env) run(timeout time.Duration, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"-c", e.config, "--run-dir", e.runDir}, args...)
	cmd := exec.CommandContext(ctx, fliswarmBin(e.t), full...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	code = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("fliswarm %v: %v", args, err)
	}
	e.t.Logf("$ fliswarm %s (exit %d)\n%s%s", strings.Join(args, " "), code, o.String(), er.String())
	return o.String(), er.String(), code
}

// startDaemon runs `fliswarm start --debug` in the background, logging to
// a file, and waits until its control socket answers.
func (e *env) startDaemon() {
	e.t.Helper()
	e.logPath = filepath.Join(e.dir, "daemon.log")
	logf, err := os.Create(e.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	mode := e.mode
	if mode == "" {
		mode = "--debug"
	}
	cmd := exec.Command(fliswarmBin(e.t), append([]string{"-c", e.config, "--run-dir", e.runDir, "start", mode}, e.startArgs...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.daemon = cmd
	e.exited = make(chan error, 1)
	go func() { e.exited <- cmd.Wait(); logf.Close() }()
	e.eventually(30*time.Second, "daemon answers on its control socket", func() error {
		select {
		case err := <-e.exited:
			e.exited <- err
			return fmt.Errorf("daemon exited: %v\n%s", err, e.log())
		default:
		}
		_, err := e.status()
		return err
	})
}

// stopDaemon sends SIGTERM and waits for the daemon to exit.
func (e *env) stopDaemon() {
	if e.daemon == nil {
		return
	}
	_ = e.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		_ = e.daemon.Process.Kill()
		<-e.exited
		e.t.Errorf("daemon did not stop within 30 s of SIGTERM")
	}
	e.daemon = nil
	if e.t.Failed() {
		e.t.Logf("daemon log:\n%s", e.log())
	}
}

func (e *env) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// status asks the daemon for its status over the control socket.
func (e *env) status() (v1.DaemonStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return control.NewClient(filepath.Join(e.runDir, "fliswarm.sock")).Status(ctx)
}

// eventually polls f until it returns nil or timeout passes.
func (e *env) eventually(timeout time.Duration, what string, f func() error) time.Duration {
	e.t.Helper()
	start := time.Now()
	var err error
	for delay := 50 * time.Millisecond; time.Since(start) < timeout; delay = min(delay*2, time.Second) {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(delay)
	}
	e.t.Fatalf("%s: not within %s: %v", what, timeout, err)
	return 0
}

// engineFor opens the Go SDK client of a bed node, as fliswarm reaches it
// (over TLS or ssh on the bed's TLS and ssh nodes).
func engineFor(t testing.TB, n testbed.Node) *fsengine.Client {
	t.Helper()
	c, err := fsengine.New(n.Name, n.DockerHost, n.EngineOptions(fsengine.Options{Timeout: 15 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// managed lists the fliswarm containers of a node.
func managed(t testing.TB, n testbed.Node) []fsengine.Container {
	t.Helper()
	c := engineFor(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cs, err := c.ListContainers(ctx, map[string]string{render.LabelManaged: "true"}, "flicamera-"+n.Name)
	if err != nil {
		t.Fatalf("%s: list containers: %v", n.Name, err)
	}
	return cs
}

// runningContainer returns the one running managed container of a node,
// or an error saying what was found instead.
func runningContainer(t testing.TB, n testbed.Node) (fsengine.Container, error) {
	cs := managed(t, n)
	var run []fsengine.Container
	for _, c := range cs {
		if c.Running {
			run = append(run, c)
		}
	}
	if len(run) != 1 {
		return fsengine.Container{}, fmt.Errorf("%s: %d running managed containers (of %d)", n.Name, len(run), len(cs))
	}
	return run[0], nil
}

// resetBed removes every managed container, the bed's volumes and, when
// images is true, the camera images from every node, so a test starts
// from nothing.
func resetBed(t testing.TB, bed *testbed.Bed, images bool) {
	t.Helper()
	for _, n := range bed.Nodes {
		c := engineFor(t, n)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		for _, ctr := range managed(t, n) {
			if err := c.RemoveContainer(ctx, ctr.ID, true); err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
		}
		if err := c.RemoveVolume(ctx, "data", true); err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if images {
			for _, img := range []string{bed.ImageRef, bed.ImageV2Ref} {
				// Absent images are fine: the error is ignored on purpose.
				_ = exec.Command("docker", "-H", n.Socket, "image", "rm", "-f", img).Run()
			}
		}
		cancel()
	}
}

// statusOf finds a node in a status.
func statusOf(st v1.DaemonStatus, node string) (found bool, ready, reachable, docker bool, lastErr string) {
	for _, n := range st.Nodes {
		if n.Name == node {
			return true, n.Ready(), n.Reachable, n.DockerAlive, n.LastError
		}
	}
	return false, false, false, false, ""
}

func mustJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func dockerCLI(host string, args ...string) *exec.Cmd {
	return exec.Command("docker", append([]string{"-H", host}, args...)...)
}

// removeCameras removes every managed container from every node.
func removeCameras(t testing.TB, bed *testbed.Bed) {
	for _, n := range bed.Nodes {
		c, err := fsengine.New(n.Name, n.Socket, fsengine.Options{Timeout: 30 * time.Second})
		if err != nil {
			t.Errorf("%s: %v", n.Name, err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cs, err := c.ListContainers(ctx, map[string]string{render.LabelManaged: "true"}, "flicamera-"+n.Name)
		if err != nil {
			t.Logf("%s: cannot list containers to clean up: %v", n.Name, err)
		}
		for _, ctr := range cs {
			if err := c.RemoveContainer(ctx, ctr.ID, true); err != nil {
				t.Logf("%s: cleanup: %v", n.Name, err)
			}
		}
		cancel()
		c.Close()
	}
}
