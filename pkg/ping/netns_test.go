package ping

// Tests that need a host that can be cut off. They build their own network
// namespace with a veth pair (10.214.0.1 here, 10.214.0.2 inside, a range
// apart from the test bed's 10.213.0.0/24), so no packet leaves the
// machine, and remove it afterwards. They need root and the ip command and
// are skipped without them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	nsPrefix   = "fse-ping-"
	linkPrefix = "fsp"
	outerIP    = "10.214.0.1"
	innerIP    = "10.214.0.2"
)

type testNetns struct {
	name  string // namespace name
	outer string // veth end in our namespace
	inner string // veth end inside the namespace
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n testNetns) exec(args ...string) error {
	return ipCmd(append([]string{"netns", "exec", n.name}, args...)...)
}

// cleanStale removes namespaces and links a killed earlier run of this
// test left behind (their process is gone).
func cleanStale() {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		pid, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		if p, err := strconv.Atoi(pid); err == nil && p != os.Getpid() && unix.Kill(p, 0) != nil {
			_ = ipCmd("netns", "del", name)
			_ = ipCmd("link", "del", linkPrefix+pid+"a")
		}
	}
}

// newTestNetns makes the namespace, its veth pair and addresses, with
// loopback up inside and unprivileged ICMP allowed there.
func newTestNetns(t *testing.T) testNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command")
	}
	cleanStale()
	pid := strconv.Itoa(os.Getpid())
	n := testNetns{name: nsPrefix + pid, outer: linkPrefix + pid + "a", inner: linkPrefix + pid + "b"}
	_ = ipCmd("netns", "del", n.name) // left by an earlier test of this process
	_ = ipCmd("link", "del", n.outer)
	t.Cleanup(func() {
		_ = ipCmd("link", "del", n.outer) // takes the inner end with it
		if err := ipCmd("netns", "del", n.name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	steps := [][]string{
		{"netns", "add", n.name},
		{"link", "add", n.outer, "type", "veth", "peer", "name", n.inner},
		{"link", "set", n.inner, "netns", n.name},
		{"addr", "add", outerIP + "/24", "dev", n.outer},
		{"link", "set", n.outer, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range [][]string{
		{"ip", "addr", "add", innerIP + "/24", "dev", n.inner},
		{"ip", "link", "set", n.inner, "up"},
		{"ip", "link", "set", "lo", "up"},
		{"sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"},
	} {
		if err := n.exec(s...); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// inNetns runs f on an OS thread that has joined the namespace, so the
// sockets f opens belong to it. The thread is discarded afterwards.
func inNetns(t *testing.T, n testNetns, f func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open(filepath.Join("/var/run/netns", n.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

func TestNetnsHostUpAndDown(t *testing.T) {
	n := newTestNetns(t)
	if !canRaw(t) {
		t.Skip("no raw ICMP sockets for this process")
	}
	ctx := context.Background()

	// Up: the namespace answers (the first request also waits for ARP).
	if err := Host(ctx, innerIP, 10*time.Second, 0); err != nil {
		t.Fatalf("ping %s while up: %v", innerIP, err)
	}

	// Unprivileged ICMP inside the namespace, where ping_group_range allows it.
	err := inNetns(t, n, func() error {
		if !udpPermitted(t) {
			return errors.New("unprivileged ICMP still not permitted in the namespace")
		}
		return check(ctx, outerIP, 10*time.Second, 0, []method{methodUDP})
	})
	if err != nil {
		t.Errorf("unprivileged ping from inside the namespace: %v", err)
	}

	// Down: cut the link; ICMP and the TCP fallback both stay silent.
	if err := n.exec("ip", "link", "set", n.inner, "down"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = Host(ctx, innerIP, time.Second, 0)
	took := time.Since(start)
	if !errors.Is(err, ErrNoAnswer) || !strings.HasPrefix(err.Error(), "ping "+innerIP+": icmp: ") {
		t.Errorf("ping %s while down: %v, want ErrNoAnswer", innerIP, err)
	}
	if took > 20*time.Second {
		t.Errorf("ping with a 1s timeout took %s", took)
	}
	err = check(ctx, innerIP, time.Second, 2375, []method{methodTCP})
	if !errors.Is(err, ErrNoAnswer) {
		t.Errorf("TCP fallback to %s while down: %v, want ErrNoAnswer", innerIP, err)
	}

	// The caller's cancellation ends a ping at once, and is not "no answer".
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	err = Host(cctx, innerIP, time.Minute, 0)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrNoAnswer) {
		t.Errorf("cancelled ping: %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("cancelled ping returned after %s", took)
	}

	// Up again: answers again.
	if err := n.exec("ip", "link", "set", n.inner, "up"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		err := Host(ctx, innerIP, 2*time.Second, 0)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %s after link up: %v", innerIP, err)
		}
	}
}

// TestNetnsConcurrent pings the namespace and loopback at once: each call
// must get its own replies even though raw sockets see every packet.
func TestNetnsConcurrent(t *testing.T) {
	newTestNetns(t)
	if !canRaw(t) {
		t.Skip("no raw ICMP sockets for this process")
	}
	if err := Host(context.Background(), innerIP, 10*time.Second, 0); err != nil {
		t.Fatalf("warm-up ping: %v", err)
	}
	const calls = 16
	errc := make(chan error, calls)
	for i := range calls {
		host := innerIP
		if i%2 == 1 {
			host = "127.0.0.1"
		}
		go func() { errc <- Host(context.Background(), host, 20*time.Second, 0) }()
	}
	for range calls {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
