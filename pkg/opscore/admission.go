package opscore

import (
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Who may connect, and how many: the actor port is open to the network,
// so a site can limit it to its own networks and bound the number of
// users.

// WithAllowedNetworks accepts connections only from these networks (none:
// from anywhere). A refused connection is closed at once, with a failure
// line saying why, and logged (rate-limited).
func WithAllowedNetworks(nets []netip.Prefix) Option {
	return func(s *Server) { s.allowed = nets }
}

// WithMaxUsers bounds the users connected at once (default 0: no bound).
// A connection beyond it gets a failure line saying so and is closed.
func WithMaxUsers(n int) Option {
	return func(s *Server) { s.maxUsers = max(n, 0) }
}

// admit says why a new connection from addr is refused, "" to accept it.
func (s *Server) admit(addr net.Addr) string {
	if len(s.allowed) > 0 {
		ap, err := netip.ParseAddrPort(addr.String())
		ok := false
		if err == nil {
			ip := ap.Addr().Unmap()
			for _, p := range s.allowed {
				ok = ok || p.Contains(ip)
			}
		}
		if !ok {
			return "connections from " + addr.String() + " are not allowed"
		}
	}
	if s.maxUsers > 0 {
		s.mu.RLock()
		n := len(s.users)
		s.mu.RUnlock()
		if n >= s.maxUsers {
			return "too many users (" + strconv.Itoa(n) + " connected, at most " + strconv.Itoa(s.maxUsers) + ")"
		}
	}
	return ""
}

// refuse tells a refused connection why, and closes it.
func (s *Server) refuse(nc net.Conn, why string) {
	if ok, suppressed := s.badLog.Allow(); ok {
		s.log.Info("connection refused", "addr", nc.RemoteAddr().String(), "reason", why, "suppressed", suppressed)
	}
	_ = nc.SetWriteDeadline(timeNow().Add(refuseWriteTimeout))
	_, _ = nc.Write(append(AppendReply(nil, 0, 0, Failed, ErrorKW(s.actor, why)), '\n'))
	_ = nc.Close()
}

// Observer is told of the server's users, for metrics. Its methods are
// called with the server's lock held: they must be quick.
type Observer interface {
	// UsersChanged gives the number of users connected.
	UsersChanged(n int)
	// UserDropped counts a user disconnected for not reading.
	UserDropped()
}

// WithObserver sets who is told of the users (default: nobody).
func WithObserver(o Observer) Option {
	return func(s *Server) {
		if o != nil {
			s.observer = o
		}
	}
}

// WithUserHook sets a function told of every user that connects
// (connected true) and goes (false), after the user was registered or
// unregistered. It is called with the server's lock held: it must be quick
// and must not call the server.
func WithUserHook(f func(u User, connected bool)) Option {
	return func(s *Server) { s.userHook = f }
}

type noObserver struct{}

func (noObserver) UsersChanged(int) {}
func (noObserver) UserDropped()     {}

// refuseWriteTimeout bounds the write of a refused connection's reason.
const refuseWriteTimeout = time.Second

// timeNow is the clock of deadlines.
var timeNow = time.Now
