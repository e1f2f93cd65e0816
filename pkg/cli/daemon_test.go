package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/daemon"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds cmd/fliswarm once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "fliswarm-cli-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "fliswarm")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/fliswarm")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// bed is one private daemon setup: a run directory and a configuration
// whose only node's engine is a closed loopback port, so the reconciler
// keeps retrying and never reaches anything.
type bed struct {
	t      *testing.T
	bin    string
	runDir string
	config string
}

func newBed(t *testing.T) *bed {
	t.Helper()
	b := &bed{t: t, bin: binary(t), runDir: t.TempDir()}
	cfg := fmt.Sprintf(`
actor: {name: fliswarm, host: 127.0.0.1, port: %d, tron_host: null, log_dir: false}
registry: 127.0.0.1:%d
image: sdss5/flicamera:latest
ping_timeout: 0.1
http: null
enabled_nodes: [n1]
nodes:
  n1: {host: 127.0.0.1, port: %d, docker-client: "tcp://127.0.0.1:%d", category: gfa}
`, closedPort(t), closedPort(t), closedPort(t), closedPort(t))
	b.config = writeFile(t, cfg)
	t.Cleanup(b.kill)
	return b
}

func (b *bed) pidPath() string { return daemon.PidPath(b.runDir) }

func (b *bed) command(ctx context.Context, args ...string) *exec.Cmd {
	args = append([]string{"-c", b.config, "--run-dir", b.runDir}, args...)
	cmd := exec.CommandContext(ctx, b.bin, args...)
	cmd.Env = append(os.Environ(), "FLISWARM_RUN_DIR="+b.runDir, "OBSERVATORY=APO")
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs the binary to completion (90 s at most).
func (b *bed) run(args ...string) (code int, stdout, stderr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := b.command(ctx, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		b.t.Fatalf("fliswarm %q: %v", args, err)
	}
	if ctx.Err() != nil {
		b.t.Fatalf("fliswarm %q did not finish in time; stderr:\n%s%s", args, errOut.String(), b.daemonOutput())
	}
	return code, out.String(), errOut.String()
}

func (b *bed) daemonOutput() string {
	out, err := os.ReadFile(filepath.Join(b.runDir, "fliswarm.out"))
	if err != nil {
		return ""
	}
	return "\ndaemon output:\n" + string(out)
}

// status asks the running daemon for its status.
func (b *bed) status() (v1.DaemonStatus, error) {
	code, out, errOut := b.run("status", "--json", "--timeout", "20s")
	var st v1.DaemonStatus
	if code != 0 {
		return st, fmt.Errorf("status exit %d: %s", code, errOut)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("status --json: %w\n%s", err, out)
	}
	return st, nil
}

// waitFor polls cond every 100 ms for up to 60 s.
func (b *bed) waitFor(what string, cond func() error) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: %v%s", what, err, b.daemonOutput())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill ends a daemon a failed test left behind, by the pid in its own
// pid file (only a positive pid, only while it holds the lock).
func (b *bed) kill() {
	if pid := daemon.Running(b.pidPath()); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

var startedRE = regexp.MustCompile(`^fliswarm started \(pid (\d+), pid file (.+)\)\n$`)

func TestDaemonStartStatusStop(t *testing.T) {
	b := newBed(t)

	code, out, errOut := b.run("start")
	if code != 0 {
		t.Fatalf("start: exit %d, stderr %s%s", code, errOut, b.daemonOutput())
	}
	m := startedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("start printed %q", out)
	}
	pid, _ := strconv.Atoi(m[1])
	if pid <= 0 || m[2] != b.pidPath() {
		t.Fatalf("start reported pid %d, pid file %s; want a real pid and %s", pid, m[2], b.pidPath())
	}
	if got, err := daemon.ReadPid(b.pidPath()); err != nil || got != pid {
		t.Fatalf("pid file holds %d (%v), start said %d", got, err, pid)
	}
	if got := daemon.Running(b.pidPath()); got != pid {
		t.Fatalf("Running = %d, want %d", got, pid)
	}

	st, err := b.status()
	if err != nil {
		t.Fatalf("%v%s", err, b.daemonOutput())
	}
	if !st.Daemon.Running || st.Daemon.Pid != pid || st.Daemon.Config != b.config {
		t.Errorf("status daemon = %+v; want running, pid %d, config %s", st.Daemon, pid, b.config)
	}

	code, _, errOut = b.run("start")
	if code != 1 || !strings.Contains(errOut, "already running") || !strings.Contains(errOut, fmt.Sprintf("pid %d", pid)) {
		t.Errorf("second start: exit %d, stderr %q; want 1, already running with pid %d", code, errOut, pid)
	}
	if got := daemon.Running(b.pidPath()); got != pid {
		t.Fatalf("after the refused start Running = %d, want %d", got, pid)
	}

	code, out, errOut = b.run("stop")
	if code != 0 || out != fmt.Sprintf("fliswarm stopped (pid %d)\n", pid) {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// stop waits: when it returns, the daemon no longer holds the lock.
	if got := daemon.Running(b.pidPath()); got != 0 {
		t.Errorf("Running after stop = %d", got)
	}
	if _, err := os.Stat(b.pidPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after stop: %v", err)
	}
	code, out, _ = b.run("stop")
	if code != 0 || !strings.Contains(out, "not running") {
		t.Errorf("stop again: exit %d, stdout %q", code, out)
	}
}

func TestDaemonStartBrokenConfigReportsAtOnce(t *testing.T) {
	b := newBed(t)
	b.config = writeFile(t, "image: x\nenabled_nodes: [a]\nnodes: {}\n")
	code, out, errOut := b.run("start")
	if code != 3 || !strings.Contains(errOut, "enabled_nodes[0]") || out != "" {
		t.Errorf("start with a broken config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := daemon.Running(b.pidPath()); got != 0 {
		t.Errorf("a daemon runs (pid %d) after a refused start", got)
	}
}

func TestDaemonStartDebugStaysInForeground(t *testing.T) {
	b := newBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := b.command(ctx, "start", "--debug")
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid

	b.waitFor("the foreground daemon to answer status", func() error {
		select {
		case err := <-exited:
			t.Fatalf("start --debug exited early (%v); stderr:\n%s", err, errOut.String())
		default:
		}
		st, err := b.status()
		if err != nil {
			return err
		}
		if !st.Daemon.Running || st.Daemon.Pid != pid {
			return fmt.Errorf("status daemon = %+v, want running with pid %d", st.Daemon, pid)
		}
		return nil
	})
	if got := daemon.Running(b.pidPath()); got != pid {
		t.Errorf("pid file names %d, want the foreground process %d", got, pid)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("start --debug after SIGTERM: %v; stderr:\n%s", err, errOut.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("start --debug still running 60 s after SIGTERM; stderr:\n%s", errOut.String())
	}
	if _, err := os.Stat(b.pidPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after SIGTERM: %v", err)
	}
	// --debug logs readable lines, not JSON.
	logs := errOut.String()
	if !strings.Contains(logs, "fliswarm started") || strings.HasPrefix(strings.TrimSpace(logs), "{") {
		t.Errorf("start --debug logs:\n%s", logs)
	}
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
