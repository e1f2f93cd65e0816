package ping

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

func marshal(t *testing.T, typ icmp.Type, body icmp.MessageBody) []byte {
	t.Helper()
	b, err := (&icmp.Message{Type: typ, Body: body}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIsReply(t *testing.T) {
	target := netip.MustParseAddr("10.213.0.11")
	other := netip.MustParseAddr("10.213.0.12")
	reply := func(id, seq int) []byte {
		return marshal(t, ipv4.ICMPTypeEchoReply, &icmp.Echo{ID: id, Seq: seq, Data: []byte("x")})
	}
	tests := []struct {
		name    string
		b       []byte
		from    netip.Addr
		checkID bool
		want    bool
	}{
		{"reply", reply(7, 2), target, true, true},
		{"first seq", reply(7, 1), target, true, true},
		{"other host", reply(7, 2), other, true, false},
		{"other id", reply(8, 2), target, true, false},
		{"other id, kernel filtered", reply(8, 2), target, false, true},
		{"seq not sent yet", reply(7, 4), target, true, false},
		{"seq zero", reply(7, 0), target, true, false},
		{"our own request", marshal(t, ipv4.ICMPTypeEcho, &icmp.Echo{ID: 7, Seq: 2}), target, true, false},
		{"unreachable", marshal(t, ipv4.ICMPTypeDestinationUnreachable, &icmp.DstUnreach{Data: make([]byte, 28)}), target, true, false},
		{"garbage", []byte{0}, target, true, false},
		{"empty", nil, target, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isReply(tt.b, tt.from, target, 7, 3, tt.checkID); got != tt.want {
				t.Errorf("isReply = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzIsReply: whatever arrives on a raw ICMP socket must not panic the
// matcher, and only an echo reply may match.
func FuzzIsReply(f *testing.F) {
	for _, m := range []icmp.Message{
		{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 1, Seq: 1}},
		{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 1, Seq: 1}},
		{Type: ipv4.ICMPTypeTimeExceeded, Body: &icmp.TimeExceeded{Data: make([]byte, 28)}},
	} {
		b, err := m.Marshal(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 0})
	ip := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, b []byte) {
		if isReply(b, ip, ip, 1, 1, true) && (len(b) < 8 || b[0] != 0) {
			t.Errorf("%x matched but is no echo reply", b)
		}
	})
}

func TestResolve(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{in: "127.0.0.1", want: "127.0.0.1"},
		{in: "10.213.0.11", want: "10.213.0.11"},
		{in: "::ffff:10.213.0.11", want: "10.213.0.11"},
		{in: "localhost", want: "127.0.0.1"}, // from /etc/hosts: no DNS query leaves the machine
		{in: "::1", wantErr: "only IPv4"},
		{in: "fe80::1", wantErr: "only IPv4"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := resolve(context.Background(), tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("resolve(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Errorf("resolve(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestResendInterval(t *testing.T) {
	tests := map[time.Duration]time.Duration{
		100 * time.Millisecond: 200 * time.Millisecond,
		time.Second:            333333333 * time.Nanosecond,
		3 * time.Second:        time.Second,
		time.Minute:            time.Second,
	}
	for in, want := range tests {
		if got := resendInterval(in); got != want {
			t.Errorf("resendInterval(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestArguments(t *testing.T) {
	if err := Host(context.Background(), "127.0.0.1", 0, 0); err == nil {
		t.Error("a zero timeout was accepted")
	}
	if err := Host(context.Background(), "127.0.0.1", time.Second, 70000); err == nil {
		t.Error("port 70000 was accepted")
	}
	err := Host(context.Background(), "::1", time.Second, 0)
	if err == nil || errors.Is(err, ErrNoAnswer) || !strings.HasPrefix(err.Error(), "ping ::1: ") {
		t.Errorf("Host(::1) = %v, want an IPv4-only error", err)
	}
}

func TestNotPermitted(t *testing.T) {
	for _, err := range []error{syscall.EPERM, syscall.EACCES, os.NewSyscallError("socket", syscall.EACCES), syscall.EPROTONOSUPPORT} {
		if !notPermitted(err) {
			t.Errorf("notPermitted(%v) = false", err)
		}
	}
	for _, err := range []error{nil, syscall.ECONNREFUSED, errors.New("permission denied")} {
		if notPermitted(err) {
			t.Errorf("notPermitted(%v) = true", err)
		}
	}
}

// canRaw tells whether this process may open a raw ICMP socket.
func canRaw(t *testing.T) bool {
	t.Helper()
	c, err := icmp.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// TestLoopbackICMP pings loopback over a raw socket. The unprivileged
// (UDP) ICMP socket depends on the machine's net.ipv4.ping_group_range, so
// it is tested where the test sets that range itself: inside a network
// namespace (TestNetnsHostUpAndDown).
func TestLoopbackICMP(t *testing.T) {
	for _, m := range []method{methodRaw} {
		t.Run(m.String(), func(t *testing.T) {
			if !canRaw(t) {
				t.Skip("no raw ICMP sockets for this process")
			}
			if err := check(context.Background(), "127.0.0.1", 10*time.Second, 0, []method{m}); err != nil {
				t.Fatalf("ping 127.0.0.1 over %s: %v", m, err)
			}
		})
	}
	if err := Host(context.Background(), "localhost", 10*time.Second, 0); err != nil {
		t.Errorf("Host(localhost): %v", err)
	}
}

// udpPermitted tells whether this process may open an unprivileged ICMP
// socket in the current network namespace.
func udpPermitted(t *testing.T) bool {
	t.Helper()
	c, err := icmp.ListenPacket("udp4", "0.0.0.0")
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func TestTCPFallback(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port

	closedL, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedL.Addr().(*net.TCPAddr).Port
	_ = closedL.Close()

	tcpOnly := []method{methodTCP}
	if err := check(context.Background(), "127.0.0.1", 10*time.Second, open, tcpOnly); err != nil {
		t.Errorf("TCP to a listening port: %v", err)
	}
	if err := check(context.Background(), "127.0.0.1", 10*time.Second, closed, tcpOnly); err != nil {
		t.Errorf("TCP to a closed port (refused, so the host is up): %v", err)
	}
	err = check(context.Background(), "127.0.0.1", 10*time.Second, 0, tcpOnly)
	if !errors.Is(err, ErrNotPermitted) {
		t.Errorf("no ICMP and no fallback port: %v, want ErrNotPermitted", err)
	}
}

// TestFallbackWhenNotPermitted runs Host's real order where this process
// may not open unprivileged ICMP sockets (the default ping_group_range,
// "1 0"): with only that socket kind allowed, the TCP fallback answers.
func TestFallbackWhenNotPermitted(t *testing.T) {
	if udpPermitted(t) {
		t.Skip("unprivileged ICMP sockets are permitted here")
	}
	closedL, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := closedL.Addr().(*net.TCPAddr).Port
	_ = closedL.Close()
	if err := check(context.Background(), "127.0.0.1", 10*time.Second, closed, []method{methodUDP, methodTCP}); err != nil {
		t.Errorf("fallback to TCP: %v", err)
	}
	err = check(context.Background(), "127.0.0.1", 10*time.Second, 0, []method{methodUDP, methodTCP})
	if !errors.Is(err, ErrNotPermitted) {
		t.Errorf("no fallback port: %v, want ErrNotPermitted", err)
	}
}

func TestConcurrentLoopback(t *testing.T) {
	if !canRaw(t) {
		t.Skip("no raw ICMP sockets for this process")
	}
	errc := make(chan error, 20)
	for i := range cap(errc) {
		host := "127.0.0." + strconv.Itoa(1+i%4) // all of 127/8 is loopback
		go func() { errc <- Host(context.Background(), host, 20*time.Second, 0) }()
	}
	for range cap(errc) {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
