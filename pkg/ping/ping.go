package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// ErrNoAnswer is wrapped by the error Host returns when the host was
// asked but did not answer in time (or the network said it cannot be
// reached), as opposed to a name that does not resolve or a bad argument.
var ErrNoAnswer = errors.New("no answer")

// ErrNotPermitted is wrapped when no ICMP socket may be opened and no
// fallback port was given.
var ErrNotPermitted = errors.New("ICMP sockets not permitted")

// method is one way of asking a host whether it is up.
type method int

const (
	methodRaw method = iota // ICMP on a raw socket
	methodUDP               // ICMP on an unprivileged datagram socket
	methodTCP               // TCP connection to the fallback port
)

func (m method) String() string {
	switch m {
	case methodRaw:
		return "icmp"
	case methodUDP:
		return "icmp (unprivileged)"
	case methodTCP:
		return "tcp"
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// allMethods is the order Host tries: each ICMP socket kind while the
// system refuses to open it, then TCP.
var allMethods = []method{methodRaw, methodUDP, methodTCP}

// Host checks that host answers within timeout: ICMP echo (raw socket as
// root, else unprivileged ICMP if net.ipv4.ping_group_range allows),
// falling back to a TCP connect to fallbackPort when ICMP sockets are not
// permitted (a refused connection also proves the host is up; a
// fallbackPort of 0 disables the fallback). It returns nil when the host
// answers; else an error naming the host, wrapping ErrNoAnswer when it was
// asked and stayed silent. IPv4 only.
func Host(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error {
	return check(ctx, host, timeout, fallbackPort, allMethods)
}

// check is Host with the methods to try, in order.
func check(ctx context.Context, host string, timeout time.Duration, fallbackPort int, methods []method) error {
	if timeout <= 0 {
		return fmt.Errorf("ping %s: timeout %s is not positive", host, timeout)
	}
	if fallbackPort < 0 || fallbackPort > 65535 {
		return fmt.Errorf("ping %s: fallback port %d out of range", host, fallbackPort)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	ip, err := resolve(ctx, host)
	if err != nil {
		return fmt.Errorf("ping %s: %w", host, err)
	}
	who := host
	if ip.String() != host {
		who = fmt.Sprintf("%s (%s)", host, ip)
	}
	for _, m := range methods {
		switch m {
		case methodRaw, methodUDP:
			err := echo(ctx, ip, m == methodRaw)
			if notPermitted(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("ping %s: %s: %w", who, m, describe(ctx, timeout, err))
			}
			return nil
		case methodTCP:
			if fallbackPort == 0 {
				continue
			}
			if err := connect(ctx, ip, fallbackPort); err != nil {
				return fmt.Errorf("ping %s: tcp port %d: %w", who, fallbackPort, describe(ctx, timeout, err))
			}
			return nil
		}
	}
	return fmt.Errorf("ping %s: %w and no fallback port given", who, ErrNotPermitted)
}

// describe turns a failed attempt into the error Host reports: silence
// until the deadline, or the network saying no, wrap ErrNoAnswer; the
// caller's cancellation stays itself.
func describe(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errSilent) || isTimeout(err) {
		if ctx.Err() != nil {
			return fmt.Errorf("%w within %s", ErrNoAnswer, timeout)
		}
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	if isUnreachable(err) {
		return fmt.Errorf("%w: %w", ErrNoAnswer, err)
	}
	return err
}

// errSilent ends an echo exchange that got no reply before the deadline.
var errSilent = errors.New("no echo reply")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isUnreachable(err error) bool {
	for _, e := range []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN,
		syscall.ENETDOWN, syscall.ETIMEDOUT, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// notPermitted tells whether opening an ICMP socket was refused by the
// system (no CAP_NET_RAW, group outside ping_group_range, no support).
func notPermitted(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) ||
		errors.Is(err, syscall.EPROTONOSUPPORT) || errors.Is(err, syscall.EAFNOSUPPORT) ||
		errors.Is(err, syscall.ESOCKTNOSUPPORT)
}

// resolve returns host's IPv4 address: host itself when it is one, else
// the first IPv4 address it resolves to.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if !ip.Is4() {
			return netip.Addr{}, fmt.Errorf("%s is not an IPv4 address (only IPv4 is supported)", host)
		}
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve: %w", err)
	}
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is4() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("resolve: %s has no IPv4 address", host)
}

// resendInterval is how often echo repeats its request while waiting: a
// third of the timeout, between 200 ms and 1 s.
func resendInterval(timeout time.Duration) time.Duration {
	return min(max(timeout/3, 200*time.Millisecond), time.Second)
}

// echo sends ICMP echo requests to ip until a matching reply comes back
// (nil) or ctx ends. privileged selects a raw socket, which receives every
// ICMP packet of the host (so replies are matched by source, identifier
// and sequence), over an unprivileged datagram socket (where the kernel
// sets the identifier and delivers only this socket's replies).
func echo(ctx context.Context, ip netip.Addr, privileged bool) error {
	network := "udp4"
	if privileged {
		network = "ip4:icmp"
	}
	conn, err := icmp.ListenPacket(network, "0.0.0.0")
	if err != nil {
		return err
	}
	defer conn.Close()
	// A read blocked when ctx ends returns at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var dst net.Addr = &net.UDPAddr{IP: ip.AsSlice()}
	if privileged {
		dst = &net.IPAddr{IP: ip.AsSlice()}
	}
	var rnd [10]byte
	_, _ = rand.Read(rnd[:])
	id := int(binary.BigEndian.Uint16(rnd[:2]))
	payload := append([]byte("fliswarm"), rnd[2:]...)

	deadline, _ := ctx.Deadline()
	interval := resendInterval(time.Until(deadline))
	buf := make([]byte, 1500)
	seq := 0
	var nextSend time.Time
	for {
		if err := ctx.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return errSilent
			}
			return err
		}
		if now := time.Now(); !now.Before(nextSend) {
			seq++
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
			b, err := msg.Marshal(nil)
			if err != nil {
				return fmt.Errorf("build echo request: %w", err)
			}
			if _, err := conn.WriteTo(b, dst); err != nil {
				return fmt.Errorf("send echo request: %w", err)
			}
			nextSend = now.Add(interval)
		}
		readUntil := nextSend
		if !deadline.IsZero() && deadline.Before(readUntil) {
			readUntil = deadline
		}
		if err := conn.SetReadDeadline(readUntil); err != nil {
			return err
		}
		if ctx.Err() != nil {
			continue // AfterFunc may have run before the line above
		}
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) {
				continue
			}
			return fmt.Errorf("receive: %w", err)
		}
		if isReply(buf[:n], peerAddr(peer), ip, id, seq, privileged) {
			return nil
		}
	}
}

// peerAddr extracts the address of a received packet's sender.
func peerAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// isReply tells whether the ICMP message b, received from from, is the
// reply of ip to one of our echo requests (identifier id, sequence numbers
// 1..lastSeq). On an unprivileged socket the kernel chose the identifier
// and already filtered by it, so it is not compared.
func isReply(b []byte, from, ip netip.Addr, id, lastSeq int, checkID bool) bool {
	if from != ip {
		return false
	}
	msg, err := icmp.ParseMessage(1, b) // 1: ICMP for IPv4
	if err != nil || msg.Type != ipv4.ICMPTypeEchoReply {
		return false
	}
	e, ok := msg.Body.(*icmp.Echo)
	if !ok || e.Seq < 1 || e.Seq > lastSeq {
		return false
	}
	return !checkID || e.ID == id
}

// connect opens a TCP connection to ip:port and closes it. A refused
// connection also counts as an answer.
func connect(ctx context.Context, ip netip.Addr, port int) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp4", netip.AddrPortFrom(ip, uint16(port)).String())
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	if err != nil {
		return err
	}
	return conn.Close()
}
