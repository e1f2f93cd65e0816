package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// childEnv marks the re-executed, detached process.
const childEnv = "FLISWARM_DAEMON_CHILD"

// IsChild reports whether this process is the detached daemon.
func IsChild() bool { return os.Getenv(childEnv) == "1" }

// Detach re-executes this program with args as a detached daemon (new
// session, stdin from /dev/null, output to stderrPath or /dev/null) and
// waits until the child reports that it is ready (Ready) or failed
// (Failed), or exits. It returns the child's pid.
func Detach(args []string, stderrPath string, timeout time.Duration) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer r.Close()
	out := io.Discard
	var outFile *os.File
	if stderrPath != "" {
		outFile, err = os.OpenFile(stderrPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			w.Close()
			return 0, fmt.Errorf("daemon output: %w", err)
		}
		defer outFile.Close()
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if outFile != nil {
		cmd.Stdout, cmd.Stderr = outFile, outFile
	} else {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return 0, err
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(r)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			err := <-exited
			return 0, fmt.Errorf("daemon exited before it was ready: %v", err)
		}
		if msg, failed := strings.CutPrefix(line, "error: "); failed {
			return 0, errors.New(msg)
		}
		pid := cmd.Process.Pid // Release sets Pid to -1
		_ = cmd.Process.Release()
		return pid, nil
	case <-time.After(timeout):
		return cmd.Process.Pid, fmt.Errorf("daemon (pid %d) not ready after %s", cmd.Process.Pid, timeout)
	}
}

// notify writes one line to the parent's pipe (fd 3) if there is one.
func notify(line string) {
	if !IsChild() {
		return
	}
	f := os.NewFile(3, "ready")
	if f == nil {
		return
	}
	_, _ = f.WriteString(line + "\n")
	_ = f.Close()
}

// Ready tells a waiting parent that the daemon is up.
func Ready() { notify("ok") }

// Failed tells a waiting parent that the daemon could not start.
func Failed(err error) { notify("error: " + strings.ReplaceAll(err.Error(), "\n", "; ")) }
