package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/linesession"
)

// Run keeps a connection to the camera until ctx ends, then closes it and
// returns nil. Every command in flight when a connection ends fails with
// ErrDisconnected. Only one Run may be active per Client.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("camera %s: %w", c.name, ErrAlreadyRunning)
	}
	defer c.running.Store(false)
	c.keeper.Run(ctx, c.dial, c.serve, func(err error, retryIn time.Duration) {
		c.log.V(1).Info("cannot connect to camera", "addr", c.addr, "err", err, "retryIn", retryIn)
		c.state(false, fmt.Errorf("camera %s: connecting to %s: %w", c.name, c.addr, err))
	})
	return nil
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: c.opts.DialTimeout, KeepAliveConfig: c.opts.KeepAlive}
	return d.DialContext(ctx, "tcp", c.addr)
}

// serve runs one connection until it ends or ctx ends; it reports whether
// the connection was verified.
func (c *Client) serve(ctx context.Context, conn net.Conn) bool {
	var (
		hmu      sync.Mutex
		verified bool
		held     []clu.Reply // unsolicited replies before verification
	)
	s := linesession.New(conn, linesession.Config[clu.Reply]{
		Decode:       c.decode,
		DecodeLong:   c.decodeLong,
		Check:        c.checkSender,
		MaxLineBytes: c.opts.MaxLineBytes,
		WriteTimeout: c.opts.WriteTimeout,
		OnUnsolicited: func(r clu.Reply) {
			hmu.Lock()
			if !verified {
				if len(held) < maxHeld {
					held = append(held, r)
				}
				hmu.Unlock()
				return
			}
			hmu.Unlock()
			c.unsolicited(r)
		},
		OnDiscard: func(clu.Reply) { c.discarded.Add(1) },
		Inline:    c.opts.InlineReplies,
	})

	c.mu.Lock()
	if c.keeper.Paused() {
		c.mu.Unlock()
		_ = conn.Close()
		return false
	}
	c.cur = s
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { s.Close(ctx.Err()) })
	defer stop()

	served := make(chan error, 1)
	go func() { served <- s.Serve(nil) }()

	healthy := false
	if err := c.handshake(ctx, s); err != nil {
		s.Close(err)
	} else {
		hmu.Lock()
		verified = true
		early := held
		held = nil
		// Flushed under hmu so that later unsolicited replies wait.
		for _, r := range early {
			c.unsolicited(r)
		}
		hmu.Unlock()
		c.mu.Lock()
		if c.cur == s && s.Err() == nil {
			c.sess, c.reason = s, nil
			healthy = true
		}
		c.mu.Unlock()
		if healthy {
			c.log.Info("connected to camera", "addr", c.addr)
			c.state(true, nil)
			c.watch(ctx, s)
		}
	}
	cause := <-served

	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	if c.cur == s {
		c.cur = nil
	}
	c.mu.Unlock()
	var reason error
	switch {
	case errors.Is(cause, ErrWrongSender):
		c.log.Error(cause, "refusing the actor on the camera's port", "addr", c.addr)
		reason = fmt.Errorf("camera %s: %w", c.name, cause)
	case !healthy:
		c.log.Info("camera connection failed", "addr", c.addr, "reason", cause.Error())
		reason = fmt.Errorf("camera %s: %w", c.name, cause)
	default:
		c.log.Info("disconnected from camera", "reason", cause.Error())
		reason = fmt.Errorf("camera %s: %w: %w", c.name, ErrDisconnected, cause)
	}
	c.state(false, reason)
	return healthy
}

// maxHeld bounds the unsolicited replies held during the handshake.
const maxHeld = 256

func (c *Client) unsolicited(r clu.Reply) {
	if c.opts.OnUnsolicited != nil {
		c.opts.OnUnsolicited(r)
	}
}

// handshake pings the camera on a new connection: it must answer within
// PingTimeout (the sender check applies to the answer like to every line).
func (c *Client) handshake(ctx context.Context, s *session) error {
	if err := c.ping(ctx, s); err != nil {
		if s.Err() != nil {
			return s.Err()
		}
		return fmt.Errorf("%w: no answer to the handshake ping: %w", ErrNotAnswering, err)
	}
	return nil
}

// ping sends `ping` and waits up to PingTimeout for its end.
func (c *Client) ping(ctx context.Context, s *session) error {
	call, err := s.Start(ctx, formatCommand("ping"), nil)
	if err != nil {
		return err
	}
	_, err = call.Wait(ctx, c.opts.PingTimeout)
	return err
}

// watch pings the camera whenever nothing was read for a PingInterval,
// and drops the connection when it does not answer. It returns when the
// connection ends.
func (c *Client) watch(ctx context.Context, s *session) {
	if c.opts.PingInterval < 0 {
		<-s.Done()
		return
	}
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	s.TakeActivity()
	for {
		select {
		case <-s.Done():
			return
		case <-t.C:
		}
		if s.TakeActivity() {
			continue
		}
		if err := c.ping(ctx, s); err != nil && s.Err() == nil {
			c.log.Info("camera does not answer; dropping the connection", "err", err.Error())
			s.Close(fmt.Errorf("%w: no answer to a ping within %s", ErrNotAnswering, c.opts.PingTimeout))
		}
	}
}

func (c *Client) checkSender(r clu.Reply) error {
	if c.opts.AnySender || r.Header.Sender == c.name {
		return nil
	}
	return fmt.Errorf("%w: the actor on %s says it is %q, not %q", ErrWrongSender, c.addr, r.Header.Sender, c.name)
}

func (c *Client) state(connected bool, err error) {
	c.mu.Lock()
	if !connected {
		c.reason = err
	}
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(connected, err)
	}
}
