package opscore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/internal/loglimit"
)

// The accept loop's retry after a failed accept (out of file descriptors
// and the like) waits from acceptRetryMin, doubling up to acceptRetryMax.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// Server is an opscore actor's TCP server: it accepts users, greets them,
// reads their command lines, runs each command through the Handler and
// routes the replies.
//
// Replies to a user are queued without ever blocking the writer of the
// reply (a command, a broadcast, another user's command) and written by
// the user's own goroutine, in batches: everything queued while the
// previous write was under way goes out in one write. A user is dropped
// when its backlog exceeds WithMaxBacklog or when it has made no write
// progress for WithStallTimeout; nobody else notices.
type Server struct {
	addr       string
	handler    Handler
	log        logr.Logger
	version    string
	actor      string
	maxLine    int
	maxBacklog int
	stall      time.Duration
	maxCmds    int
	maxUsers   int
	holdStart  time.Duration
	holds      *holds // nil without a start hold
	allowed    []netip.Prefix
	observer   Observer
	userHook   func(User, bool)

	badLog *loglimit.Limiter

	lnMu      sync.Mutex
	ln        net.Listener
	listening chan struct{}
	serving   atomic.Bool

	mu    sync.RWMutex
	users map[int]*conn

	wg sync.WaitGroup // connections and running commands
}

// NewServer returns a server that will listen on addr (host:port; port 0
// picks a free one) and run commands with h.
func NewServer(addr string, h Handler, opts ...Option) *Server {
	s := &Server{
		addr:       addr,
		handler:    h,
		log:        logr.Discard(),
		version:    DefaultVersion,
		actor:      DefaultActorName,
		maxLine:    DefaultMaxLineLength,
		maxBacklog: DefaultMaxBacklog,
		stall:      DefaultStallTimeout,
		maxCmds:    DefaultMaxCommands,
		holdStart:  DefaultStartHold,
		listening:  make(chan struct{}),
		observer:   noObserver{},
		users:      make(map[int]*conn),
	}
	s.badLog = loglimit.New(badLogEvery, badLogBurst, time.Now)
	for _, o := range opts {
		o(s)
	}
	if s.holdStart > 0 {
		s.holds = newHolds(s.holdStart)
	}
	return s
}

// Listen binds the listening socket if that is not done yet. Calling it
// before Serve makes Addr valid at once.
func (s *Server) Listen() error {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("opscore: listen on %s: %w", s.addr, err)
	}
	s.ln = ln
	close(s.listening)
	s.log.Info("listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the address listened on, or nil before Listen.
func (s *Server) Addr() net.Addr {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Listening returns a channel closed once the server is listening.
func (s *Server) Listening() <-chan struct{} { return s.listening }

// ListenAndServe listens and serves until ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error { return s.Serve(ctx) }

// Serve accepts users until ctx is cancelled (listening first if Listen was
// not called). It then closes every connection, cancels the contexts of the
// running commands, waits for their handlers to return and returns nil. A
// server serves once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("opscore: server is already serving")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		s.ln.Close()
		cancel()
		s.wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()

	retry := &backoff.ExponentialBackOff{
		InitialInterval: acceptRetryMin,
		Multiplier:      2,
		MaxInterval:     acceptRetryMax,
	}
	retry.Reset()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("opscore: accept: %w", err)
			}
			// Out of file descriptors and the like: wait and retry.
			delay := retry.NextBackOff()
			s.log.Error(err, "accept failed; retrying", "in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		retry.Reset()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, nc)
		}()
	}
}
