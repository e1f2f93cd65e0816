package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RunDir is where the pid file and control socket live: $FLISWARM_RUN_DIR,
// else /run/fliswarm for root, else $XDG_RUNTIME_DIR/fliswarm, else
// /tmp/fliswarm-<uid>.
func RunDir() string {
	if d := os.Getenv("FLISWARM_RUN_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/run/fliswarm"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "fliswarm")
	}
	return fmt.Sprintf("/tmp/fliswarm-%d", os.Geteuid())
}

// PidPath is the pid file in dir.
func PidPath(dir string) string { return filepath.Join(dir, "fliswarm.pid") }

// SocketPath is the control socket in dir.
func SocketPath(dir string) string { return filepath.Join(dir, "fliswarm.sock") }

// ErrRunning is returned when another daemon holds the pid file.
type ErrRunning struct {
	Pid  int
	Path string
}

func (e *ErrRunning) Error() string {
	return fmt.Sprintf("fliswarm is already running (pid %d, pid file %s)", e.Pid, e.Path)
}

// PidFile is a held, locked pid file.
type PidFile struct {
	f    *os.File
	path string
}

// Acquire creates and locks the pid file, writing our pid. It fails with
// *ErrRunning when another process holds the lock. The lock is released
// by the kernel if the process dies, so a stale file never blocks a start.
func Acquire(path string) (*PidFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("pid file: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			pid, _ := ReadPid(path)
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, &ErrRunning{Pid: pid, Path: path}
			}
			return nil, fmt.Errorf("locking pid file %s: %w", path, err)
		}
		// A daemon that was releasing the file may have removed it
		// between our open and our lock: then we hold a lock on a
		// deleted file. Start over on the file now at path.
		if !samePath(f, path) {
			f.Close()
			if attempt < 10 {
				continue
			}
			return nil, fmt.Errorf("pid file %s keeps changing", path)
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
			f.Close()
			return nil, err
		}
		return &PidFile{f: f, path: path}, nil
	}
}

// samePath reports whether the open file f is the file now at path.
func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// Release removes the pid file and drops the lock.
func (p *PidFile) Release() {
	_ = os.Remove(p.path)
	_ = p.f.Close()
}

// ReadPid reads the pid recorded in path.
func ReadPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Running returns the pid of the daemon holding the pid file at path, or
// 0 when none does.
func Running(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0 // nobody holds it: stale
	}
	pid, err := ReadPid(path)
	if err != nil || pid <= 0 {
		return 0 // 0 or -1 would signal a process group or everything
	}
	return pid
}

// Stop sends SIGTERM to the daemon of the pid file at path and waits until
// it is gone or timeout passes. It returns the pid stopped, 0 if none ran.
func Stop(path string, timeout time.Duration) (int, error) {
	pid := Running(path)
	if pid == 0 {
		return 0, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return pid, fmt.Errorf("signalling pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if Running(path) == 0 {
			return pid, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return pid, fmt.Errorf("fliswarm (pid %d) did not stop within %s", pid, timeout)
}
