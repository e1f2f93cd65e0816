package opscore

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// When a user's connection reaches end of file its commands are cancelled;
// for a user that only closed its sending side, closeGrace bounds the wait
// for those commands to write their last replies, and drainTimeout the time
// spent writing the replies still queued, before the connection is closed.
const (
	closeGrace   = 5 * time.Second
	drainTimeout = 5 * time.Second
)

// conn is one user's connection.
type conn struct {
	srv  *Server
	nc   net.Conn
	id   int
	addr string // host:port
	host string // host only, as in UserInfo

	ctx    context.Context // cancelled when the connection goes
	cancel context.CancelFunc

	// The backlog: replies queued (obuf) and taken by the writer but not
	// yet written (writing bytes).
	omu     sync.Mutex
	obuf    []byte
	writing int
	closed  bool // aborted: queue nothing more
	raw     rawWriter

	wake       chan struct{} // a token when obuf stops being empty
	quit       chan struct{} // closed by abort
	drain      chan struct{} // closed to make the writer flush and stop
	writerDone chan struct{}
	abortOnce  sync.Once

	inflight atomic.Int64
	cmds     sync.WaitGroup
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	if why := s.admit(nc.RemoteAddr()); why != "" {
		s.refuse(nc, why)
		return
	}
	c := &conn{
		srv:        s,
		nc:         nc,
		addr:       nc.RemoteAddr().String(),
		wake:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		drain:      make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.raw = rawWriterFor(nc)
	c.host = c.addr
	if h, _, err := net.SplitHostPort(c.addr); err == nil {
		c.host = h
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { c.abort("server stopping") })
	defer stop()

	s.register(c)
	s.log.Info("user connected", "user", c.id, "addr", c.addr)
	go c.writeLoop()

	clean := c.readLoop()
	c.cancel() // the user is gone: cancel its commands
	if clean {
		// The user may only have closed its sending side: let the
		// cancelled commands end and their last replies go out.
		idle := make(chan struct{})
		go func() {
			c.cmds.Wait()
			close(idle)
		}()
		select {
		case <-idle:
		case <-c.quit:
		case <-time.After(closeGrace):
		}
		close(c.drain)
		<-c.writerDone
	}
	c.abort("")
	<-c.writerDone
	s.unregister(c)
	s.log.Info("user disconnected", "user", c.id, "addr", c.addr)
}

// abort closes the connection at once, discards its backlog and cancels
// its commands; a non-empty reason is logged with keysAndValues. It does
// not take the server's lock, so it may be called while holding it.
func (c *conn) abort(reason string, keysAndValues ...any) {
	c.abortOnce.Do(func() {
		c.omu.Lock()
		c.closed = true
		c.obuf = nil
		c.omu.Unlock()
		if reason != "" {
			kv := append([]any{"user", c.id, "addr", c.addr, "reason", reason}, keysAndValues...)
			c.srv.log.Info("dropping user", kv...)
		}
		c.cancel()
		close(c.quit)
		c.nc.Close()
	})
}
