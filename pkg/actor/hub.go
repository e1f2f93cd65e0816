package actor

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// How tron's connection to the actor port is recognised: tron connects
// from the hub's host, so a user whose peer address is one of the
// addresses the hub's host name (actor.tron_host, or the host of
// HubLinkOptions.Addr) resolves to is tron. Nothing in tron's lines tells it
// apart (any program may send a commander such as APO.Jose), and a user
// connected from the hub's host that is not tron counts as tron too: with
// tron_host on loopback, every local user does.

const (
	// maxPeers bounds the peer hosts whose last connection is kept.
	maxPeers = 256
	// hubResolveTTL is how long the hub host's addresses are reused.
	hubResolveTTL = time.Minute
	// hubResolveTimeout bounds one lookup of the hub's host.
	hubResolveTimeout = 2 * time.Second
)

// peerLog remembers, per peer address, how many users are connected from
// it and when the last one connected. The opscore server tells it of every
// user (opscore.WithUserHook).
type peerLog struct {
	log logr.Logger
	now func() time.Time

	mu         sync.Mutex
	open       map[netip.Addr]int
	last       map[netip.Addr]time.Time
	hubHost    string       // the host hubIPs are the addresses of
	hubIPs     []netip.Addr // resolved hubHost
	resolvedAt time.Time
}

func newPeerLog(log logr.Logger) *peerLog {
	return &peerLog{log: log, now: time.Now, open: map[netip.Addr]int{}, last: map[netip.Addr]time.Time{}}
}

// peerIP is the IP of a host:port address (IPv4-mapped IPv6 as IPv4).
func peerIP(addr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// userHook is the opscore.WithUserHook function. It runs under the
// server's lock: it only counts (no lookup).
func (p *peerLog) userHook(u opscore.User, connected bool) {
	ip, ok := peerIP(u.Addr)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !connected {
		if p.open[ip]--; p.open[ip] <= 0 {
			delete(p.open, ip)
		}
		return
	}
	p.open[ip]++
	if _, ok := p.last[ip]; !ok && len(p.last) >= maxPeers {
		var oldest netip.Addr
		for a, t := range p.last {
			if !oldest.IsValid() || t.Before(p.last[oldest]) {
				oldest = a
			}
		}
		delete(p.last, oldest)
	}
	p.last[ip] = p.now()
	for _, h := range p.hubIPs {
		if h == ip {
			p.log.Info("the tron hub connected to the actor port", "user", u.ID, "addr", u.Addr)
			break
		}
	}
}

// resolve returns the addresses of host, looked up again when the last
// lookup is older than hubResolveTTL or was for another host. A failed
// lookup keeps the previous addresses of the same host.
func (p *peerLog) resolve(ctx context.Context, host string) []netip.Addr {
	p.mu.Lock()
	if host == p.hubHost && p.now().Sub(p.resolvedAt) < hubResolveTTL {
		ips := p.hubIPs
		p.mu.Unlock()
		return ips
	}
	p.mu.Unlock()
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip.Unmap()}
	} else {
		ctx, cancel := context.WithTimeout(ctx, hubResolveTimeout)
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		cancel()
		if err != nil {
			p.log.V(1).Info("cannot resolve the tron hub's host", "host", host, "err", err.Error())
		}
		for _, ip := range found {
			ips = append(ips, ip.Unmap())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(ips) == 0 && host == p.hubHost {
		return p.hubIPs
	}
	p.hubHost, p.hubIPs, p.resolvedAt = host, ips, p.now()
	return ips
}

// from reports whether a user from one of ips is connected now, and when
// one last connected.
func (p *peerLog) from(ips []netip.Addr) (open bool, last time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		if p.open[ip] > 0 {
			open = true
		}
		if t := p.last[ip]; t.After(last) {
			last = t
		}
	}
	return open, last
}

// hubAddress is the hub's address for status: the hub link's, or the
// spec's tron_host:tron_port; "" when no hub is configured.
func (a *Actor) hubAddress(spec *v1.Swarm) string {
	if s, ok := a.opts.Hub.(hubStater); ok {
		return s.State().Addr
	}
	return hubAddr(spec)
}

// HubStatus returns the state of the hub connections, nil when no hub is
// configured. It may look the hub's host up (bounded by ctx and a few
// seconds).
func (a *Actor) HubStatus(ctx context.Context) *v1.HubStatus {
	addr := a.hubAddress(a.currentSpec())
	if addr == "" {
		return nil
	}
	st := &v1.HubStatus{Addr: addr}
	if s, ok := a.opts.Hub.(hubStater); ok {
		hs := s.State()
		st.Connected, st.ConnectedSince, st.NubsAccepted = hs.Connected, hs.Since, hs.NubsAccepted
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		st.TronConnected, st.TronLastConnected = a.peers.from(a.peers.resolve(ctx, host))
	}
	return st
}

// hubKeyword is status's hub=<connected>,<host:port>,<tron connected
// now>,<when tron last connected, UTC RFC 3339, or NA>: the first value is
// fliswarm's own connection to the hub, the others tron's connection to
// the actor port (see the top of hub.go for how it is recognised). With no
// hub configured: hub=F,NA,F,NA.
func hubKeyword(st *v1.HubStatus) opscore.Keyword {
	if st == nil {
		return opscore.KW("hub", false, opscore.NA, false, opscore.NA)
	}
	last := any(opscore.NA)
	if !st.TronLastConnected.IsZero() {
		last = st.TronLastConnected.UTC().Format(time.RFC3339)
	}
	return opscore.KW("hub", st.Connected, st.Addr, st.TronConnected, last)
}
