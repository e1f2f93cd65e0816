package daemon

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a small daemon (see TestMain):
// "serve <pidfile>" acquires the pid file, reports ready and waits for
// SIGTERM; "fail" reports a failure; "exit" exits without reporting.
const helperEnv = "FLISWARM_DAEMON_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	what, arg, _ := strings.Cut(mode, " ")
	switch what {
	case "serve":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		p, err := Acquire(arg)
		if err != nil {
			Failed(err)
			return 1
		}
		defer p.Release()
		Ready()
		<-sig
		return 0
	case "fail":
		Failed(errors.New("configuration is broken:\nline two"))
		return 3
	case "exit":
		return 7
	}
	return 2
}

func TestAcquireTwiceInOneProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "fliswarm.pid")
	p, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPid(path); err != nil || pid != os.Getpid() {
		t.Fatalf("pid file holds %d (%v), want %d", pid, err, os.Getpid())
	}

	// flock locks belong to the open file description, so a second open
	// in the same process conflicts with the first.
	_, err = Acquire(path)
	var running *ErrRunning
	if !errors.As(err, &running) {
		t.Fatalf("second Acquire = %v, want *ErrRunning", err)
	}
	if running.Pid != os.Getpid() || running.Path != path {
		t.Errorf("ErrRunning = %+v, want pid %d path %s", running, os.Getpid(), path)
	}
	if !strings.Contains(running.Error(), fmt.Sprintf("already running (pid %d", os.Getpid())) {
		t.Errorf("message %q", running.Error())
	}
	if got := Running(path); got != os.Getpid() {
		t.Errorf("Running = %d while held, want %d", got, os.Getpid())
	}

	p.Release()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file still there after Release: %v", err)
	}
	if got := Running(path); got != 0 {
		t.Errorf("Running = %d after Release, want 0", got)
	}
	again, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	again.Release()
}

func TestAcquireOverwritesStaleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fliswarm.pid")
	if err := os.WriteFile(path, []byte("123456789012\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire over a stale file: %v", err)
	}
	defer p.Release()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d\n", os.Getpid()); string(b) != want {
		t.Errorf("pid file = %q, want %q", b, want)
	}
}

func TestRunningAndStopOnStaleFile(t *testing.T) {
	// A stale file naming a live process (ours) must neither count as
	// running nor get that process signalled.
	path := filepath.Join(t.TempDir(), "fliswarm.pid")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	defer signal.Stop(sig)

	if got := Running(path); got != 0 {
		t.Errorf("Running on a stale file = %d, want 0", got)
	}
	pid, err := Stop(path, time.Second)
	if pid != 0 || err != nil {
		t.Errorf("Stop on a stale file = %d, %v; want 0, nil", pid, err)
	}
	select {
	case <-sig:
		t.Error("Stop signalled the pid named in a stale file")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestStopNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fliswarm.pid")
	if got := Running(path); got != 0 {
		t.Errorf("Running without a file = %d", got)
	}
	pid, err := Stop(path, time.Second)
	if pid != 0 || err != nil {
		t.Errorf("Stop without a daemon = %d, %v; want 0, nil", pid, err)
	}
}

func TestRunningWithGarbagePid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fliswarm.pid")
	p, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release()
	if err := os.WriteFile(path, []byte("not a pid"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := Running(path); got != 0 {
		t.Errorf("Running with an unreadable pid = %d, want 0", got)
	}
}

func TestRunningAndStopIgnoreNonPositivePids(t *testing.T) {
	for _, content := range []string{"0\n", "-1\n", "-42\n"} {
		t.Run(strings.TrimSpace(content), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fliswarm.pid")
			p, err := Acquire(path)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Release()
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			// kill(0) signals our process group and kill(-1) every
			// process: Stop must never get there. Check Running first so
			// a regression fails here instead of signalling anything.
			if got := Running(path); got != 0 {
				t.Fatalf("Running with pid file %q = %d, want 0", content, got)
			}
			if pid, err := Stop(path, time.Second); pid != 0 || err != nil {
				t.Errorf("Stop = %d, %v; want 0, nil", pid, err)
			}
		})
	}
}

func TestRunDir(t *testing.T) {
	t.Setenv("FLISWARM_RUN_DIR", "/some/where")
	if got := RunDir(); got != "/some/where" {
		t.Errorf("RunDir = %q with FLISWARM_RUN_DIR set", got)
	}
	t.Setenv("FLISWARM_RUN_DIR", "")
	got := RunDir()
	switch {
	case os.Geteuid() == 0 && got != "/run/fliswarm":
		t.Errorf("RunDir for root = %q, want /run/fliswarm", got)
	case got == "":
		t.Error("RunDir is empty")
	}
	if PidPath("/d") != "/d/fliswarm.pid" || SocketPath("/d") != "/d/fliswarm.sock" {
		t.Errorf("PidPath, SocketPath = %q, %q", PidPath("/d"), SocketPath("/d"))
	}
}

func TestDetachReadyThenStop(t *testing.T) {
	dir := t.TempDir()
	path := PidPath(dir)
	t.Setenv(helperEnv, "serve "+path)
	pid, err := Detach(nil, filepath.Join(dir, "out"), time.Minute)
	if err != nil {
		t.Fatalf("Detach: %v", err)
	}
	// A pid of 0 or -1 would signal a whole process group or every
	// process: never pass one on.
	if pid <= 0 {
		t.Fatalf("Detach returned pid %d", pid)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	if got := Running(path); got != pid {
		t.Fatalf("Running = %d, want the detached pid %d", got, pid)
	}
	if sid, err := syscall.Getpgid(pid); err != nil || sid != pid {
		// Setsid makes the child the leader of its own session and group.
		t.Errorf("process group of the daemon = %d (%v), want %d", sid, err, pid)
	}
	_, err = Acquire(path)
	var running *ErrRunning
	if !errors.As(err, &running) || running.Pid != pid {
		t.Fatalf("Acquire while the daemon runs = %v, want *ErrRunning with pid %d", err, pid)
	}

	stopped, err := Stop(path, time.Minute)
	if err != nil || stopped != pid {
		t.Fatalf("Stop = %d, %v; want %d, nil", stopped, err, pid)
	}
	if got := Running(path); got != 0 {
		t.Errorf("Running after Stop = %d", got)
	}
}

func TestDetachReportsFailure(t *testing.T) {
	t.Setenv(helperEnv, "fail")
	_, err := Detach(nil, "", time.Minute)
	if err == nil || err.Error() != "configuration is broken:; line two" {
		t.Fatalf("Detach = %v, want the child's error on one line", err)
	}
}

func TestDetachChildExitsBeforeReady(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(helperEnv, "exit")
	_, err := Detach(nil, filepath.Join(dir, "out"), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "7") {
		t.Fatalf("Detach = %v, want an error saying the daemon exited (status 7)", err)
	}
}

func TestNotifyOutsideADaemonIsHarmless(t *testing.T) {
	t.Setenv(childEnv, "")
	if IsChild() {
		t.Fatal("IsChild without the marker")
	}
	// Must not write to whatever fd 3 is in the test process.
	Ready()
	Failed(errors.New("x"))
}
