package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/clu"
)

// Defaults for the zero values of Options.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultCommandTimeout = 60 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultInitialBackoff = 500 * time.Millisecond
	DefaultMaxBackoff     = 10 * time.Second
	DefaultMaxLineBytes   = 1 << 20
)

var (
	// ErrNotConnected is returned (wrapped, naming the camera) by Send when
	// there is no connection to the camera actor.
	ErrNotConnected = errors.New("not connected")
	// ErrDisconnected is returned (wrapped, naming the camera and the
	// command) by Send when the connection dropped while the command ran.
	ErrDisconnected = errors.New("connection lost")
	// ErrTimeout is returned (wrapped) by Send when the per-command timeout
	// fired before the camera finished the command.
	ErrTimeout = errors.New("timed out")
	// ErrAlreadyRunning is returned by Run when another Run of the same
	// Client is active.
	ErrAlreadyRunning = errors.New("device: Run already active")

	// errDisconnectRequested is the cause of a drop asked for by Disconnect.
	errDisconnectRequested = errors.New("disconnect requested")
	// errPaused is the cause of a drop asked for by Pause.
	errPaused = errors.New("connection paused")
)

// Options tune a Client. The zero value is usable.
type Options struct {
	// Logger receives the client's logs; it is given the value
	// camera=<name>. Default: discard.
	Logger logr.Logger
	// DialTimeout bounds one connection attempt. Default 5s.
	DialTimeout time.Duration
	// CommandTimeout bounds one command from send to terminal reply.
	// Default 60s; negative means no timeout (the caller's context still
	// applies). SendWithTimeout overrides it per command.
	CommandTimeout time.Duration
	// WriteTimeout bounds writing one command line. Default 10s. A write
	// that fails or times out drops the connection, because the stream can
	// no longer be trusted.
	WriteTimeout time.Duration
	// InitialBackoff is the first wait between failed connection attempts;
	// the wait then grows exponentially (with jitter) up to MaxBackoff and
	// starts again from InitialBackoff after a successful connection.
	// Defaults 500ms and 10s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxLineBytes is the longest reply line accepted; a longer line is
	// logged and skipped, the connection stays up. Default 1 MiB.
	MaxLineBytes int
	// OnUnsolicited receives replies whose command_id is 0 or belongs to
	// no command in flight (broadcasts, and late replies to a command whose
	// Send already gave up). It is called from the connection's reader
	// goroutine, in arrival order: it must return quickly and must not wait
	// for a Send of this Client to finish.
	OnUnsolicited func(clu.Reply)
	// OnState is told about the connection: (true, nil) when a connection
	// is established, (false, cause) when it ends and after every failed
	// connection attempt, so the caller can record the latest error. Calls
	// come from Run's goroutine, one at a time, in order; it must return
	// quickly.
	OnState func(connected bool, err error)
}

func (o Options) withDefaults() Options {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	return o
}

// Result is how a camera finished a command.
type Result struct {
	// ID is the command id the command had on the wire.
	ID int
	// Code is the terminal message code: clu.CodeDone, clu.CodeFailed or
	// clu.CodeFatal.
	Code string
	// Final is the terminal reply itself (it was also given to onReply).
	Final clu.Reply
}

// OK reports whether the camera finished the command successfully.
func (r Result) OK() bool { return r.Code == clu.CodeDone }

// Client is the connection to one flicamera actor.
//
// Lifecycle: Run keeps a connection up until its context ends, redialling
// with exponential backoff after a failure or a drop. Kick skips the
// current backoff wait (the reconciler calls it when it knows the container
// has just been (re)started). Disconnect drops the connection and lets Run
// reconnect on its usual schedule; Pause drops it and keeps Run from
// dialling until Resume (use it around recreating the container). To stop
// for good, cancel Run's context.
//
// All methods are safe for concurrent use.
type Client struct {
	name string
	addr string
	opts Options
	log  logr.Logger

	running atomic.Bool
	kick    chan struct{} // buffered(1): skip the current wait

	mu       sync.Mutex
	sess     *session         // nil when not connected
	inflight map[int]*pending // command id -> command; guarded by mu
	paused   bool
}

// New returns a client for the camera actor called name (the node name,
// used in errors and logs) listening at addr ("host:port"). It does not
// connect: call Run.
func New(name, addr string, opts Options) *Client {
	opts = opts.withDefaults()
	return &Client{
		name:     name,
		addr:     addr,
		opts:     opts,
		log:      opts.Logger.WithValues("camera", name),
		kick:     make(chan struct{}, 1),
		inflight: make(map[int]*pending),
	}
}

// Name returns the camera's name.
func (c *Client) Name() string { return c.name }

// Addr returns the address the client dials.
func (c *Client) Addr() string { return c.addr }

// Connected reports whether a connection to the camera is up now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A paused client is not connected even while its reader has not yet
	// seen the dropped connection.
	return c.sess != nil && !c.paused
}

// Kick makes Run dial now instead of waiting out its backoff, and restarts
// the backoff schedule. While a connection is up, the kick is kept for the
// next wait: the first attempt after that connection drops is immediate
// (the reconciler kicks when it has just restarted the container, possibly
// before the old connection is seen to drop). It never overrides Pause.
func (c *Client) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Disconnect drops the current connection, if any. Every command in flight
// ends with ErrDisconnected. Run reconnects after its backoff wait (or at
// the next Kick).
func (c *Client) Disconnect() {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.drop(errDisconnectRequested)
	}
}

// Pause drops the current connection like Disconnect and keeps Run from
// dialling until Resume is called. Sends fail with ErrNotConnected
// meanwhile.
func (c *Client) Pause() {
	c.mu.Lock()
	c.paused = true
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		s.drop(errPaused)
	}
}

// Resume ends a Pause and makes Run dial now.
func (c *Client) Resume() {
	c.mu.Lock()
	c.paused = false
	c.mu.Unlock()
	c.Kick()
}

// Run keeps a connection to the camera until ctx ends, then closes it and
// returns nil. Every command in flight when a connection ends fails with
// ErrDisconnected. Only one Run may be active per Client.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return fmt.Errorf("camera %s: %w", c.name, ErrAlreadyRunning)
	}
	defer c.running.Store(false)

	bo := &backoff.ExponentialBackOff{
		InitialInterval:     c.opts.InitialBackoff,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         c.opts.MaxBackoff,
	}
	bo.Reset()

	for {
		if !c.waitUnpaused(ctx) {
			return nil
		}
		conn, err := c.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.V(1).Info("cannot connect to camera", "addr", c.addr, "err", err)
			c.state(false, fmt.Errorf("camera %s: connecting to %s: %w", c.name, c.addr, err))
		} else {
			bo.Reset()
			c.serve(ctx, conn)
		}
		if ctx.Err() != nil {
			return nil
		}
		if c.wait(ctx, bo.NextBackOff()) {
			bo.Reset()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// waitUnpaused blocks while the client is paused. It returns false when ctx
// ended.
func (c *Client) waitUnpaused(ctx context.Context) bool {
	for {
		c.mu.Lock()
		paused := c.paused
		c.mu.Unlock()
		if !paused {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.kick:
		}
	}
}

// wait sleeps for d, or until Kick or ctx ends. It reports whether it was
// kicked.
func (c *Client) wait(ctx context.Context, d time.Duration) (kicked bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-c.kick:
		return true
	case <-t.C:
		return false
	}
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{
		Timeout: c.opts.DialTimeout,
		// Notice a camera computer that vanished without closing the
		// connection within about half a minute.
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3,
		},
	}
	return d.DialContext(ctx, "tcp", c.addr)
}

// serve runs one connection until it ends or ctx ends.
func (c *Client) serve(ctx context.Context, conn net.Conn) {
	s := &session{conn: conn}

	c.mu.Lock()
	if c.paused {
		c.mu.Unlock()
		_ = conn.Close()
		return
	}
	c.sess = s
	c.mu.Unlock()
	c.log.Info("connected to camera", "addr", c.addr)

	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop(conn) }()
	c.state(true, nil)

	var err error
	select {
	case err = <-readErr:
	case <-ctx.Done():
		s.drop(ctx.Err())
		err = <-readErr
	}
	s.drop(err) // no-op if already dropped; closes the socket otherwise
	cause := s.cause()

	c.mu.Lock()
	if c.sess == s {
		c.sess = nil
	}
	ended := c.inflight
	c.inflight = make(map[int]*pending)
	for _, p := range ended {
		p.finish(Result{}, fmt.Errorf("camera %s disconnected while running %q: %w: %w",
			c.name, p.command, ErrDisconnected, cause))
	}
	c.mu.Unlock()

	c.log.Info("disconnected from camera", "reason", cause.Error())
	c.state(false, fmt.Errorf("camera %s: %w: %w", c.name, ErrDisconnected, cause))
}

func (c *Client) state(connected bool, err error) {
	if c.opts.OnState != nil {
		c.opts.OnState(connected, err)
	}
}

// readLoop reads reply lines from r until it fails. A line longer than
// MaxLineBytes is skipped without ending the loop.
func (c *Client) readLoop(r io.Reader) error {
	limit := c.opts.MaxLineBytes
	br := bufio.NewReaderSize(r, min(limit+1, 64<<10))
	var buf []byte
	skipping := false
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping && len(buf)+len(chunk) > limit {
				c.log.Error(nil, "skipping reply line longer than the limit", "limit", limit)
				skipping, buf = true, buf[:0]
			}
			if !skipping {
				buf = append(buf, chunk...)
			}
			continue
		}
		if err != nil {
			// A partial last line without its newline is dropped.
			return err
		}
		if skipping {
			skipping = false
			continue
		}
		line := chunk
		if len(buf) > 0 {
			buf = append(buf, chunk...)
			line = buf
		}
		if len(line)-1 > limit {
			c.log.Error(nil, "skipping reply line longer than the limit", "limit", limit)
		} else {
			c.handleLine(line)
		}
		buf = buf[:0]
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a huge buffer after one big line
		}
	}
}

// handleLine parses one reply line and routes it.
func (c *Client) handleLine(line []byte) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return
	}
	r, err := clu.ParseReply(line)
	if errors.Is(err, clu.ErrNoHeader) {
		c.log.V(2).Info("ignoring reply line without header")
		return
	}
	if err != nil {
		c.log.Error(err, "ignoring malformed reply line", "line", truncate(line, 200))
		return
	}
	c.route(r)
}

// route gives a reply to the command in flight with its id, or to
// OnUnsolicited.
func (c *Client) route(r clu.Reply) {
	id := r.Header.CommandID
	terminal := clu.IsTerminal(r.Header.MessageCode)

	c.mu.Lock()
	p := c.inflight[id]
	if p != nil && terminal {
		delete(c.inflight, id) // the id is free again
	}
	if p != nil && !p.abandoned {
		p.push(r)
		if terminal {
			p.finish(Result{ID: id, Code: r.Header.MessageCode, Final: r}, nil)
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()

	if c.opts.OnUnsolicited != nil {
		c.opts.OnUnsolicited(r)
	}
}

// Send sends command to the camera and waits until the camera finishes it.
// It is SendWithTimeout with the client's CommandTimeout.
func (c *Client) Send(ctx context.Context, command string, onReply func(clu.Reply)) (Result, error) {
	return c.SendWithTimeout(ctx, command, c.opts.CommandTimeout, onReply)
}

// SendWithTimeout sends command to the camera as "<id> <command>", with id
// the smallest positive command id not in flight on this connection, and
// waits until the command ends.
//
// Every reply carrying the id, the terminal one included, is given to
// onReply (which may be nil) in arrival order, from a goroutine of this
// command: a slow onReply delays only this command, never the connection's
// reader. SendWithTimeout returns only after its last onReply call has
// returned, and every reply received before the command ended is delivered.
//
// It returns the Result with a nil error when the camera sends a terminal
// code (also for a failure, `f` or `!`: see Result.Code). It returns an
// error naming the camera and the command when there is no connection
// (ErrNotConnected, at once), when the connection drops (ErrDisconnected),
// when timeout passes (ErrTimeout; timeout <= 0 means none) or when ctx
// ends (ctx.Err()).
//
// When the timeout fires or ctx ends, the camera may still be running the
// command, so its id stays reserved until the camera's terminal reply for
// it arrives or the connection drops; replies arriving meanwhile go to
// OnUnsolicited. This keeps a late reply from being mistaken for one to a
// newer command that reused the id.
func (c *Client) SendWithTimeout(ctx context.Context, command string, timeout time.Duration, onReply func(clu.Reply)) (Result, error) {
	command = strings.TrimSpace(command)
	if command == "" {
		return Result{}, fmt.Errorf("camera %s: empty command", c.name)
	}
	if strings.ContainsAny(command, "\r\n") {
		return Result{}, fmt.Errorf("camera %s: command %q contains a line break", c.name, command)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("camera %s: command %q: %w", c.name, command, err)
	}

	c.mu.Lock()
	s := c.sess
	if s == nil || c.paused {
		c.mu.Unlock()
		return Result{}, fmt.Errorf("camera %s: cannot send %q: %w", c.name, command, ErrNotConnected)
	}
	id := 1
	for c.inflight[id] != nil {
		id++
	}
	p := newPending(id, command, onReply)
	c.inflight[id] = p
	c.mu.Unlock()

	go p.deliver()

	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}

	if err := s.write(ctx, clu.FormatCommand(id, command), c.opts.WriteTimeout); err != nil {
		err = fmt.Errorf("camera %s: sending %q: %w", c.name, command, err)
		c.abandon(p, err)
		s.drop(err)
	} else {
		c.log.V(1).Info("sent command", "id", id, "command", command)
		select {
		case <-p.ended:
		case <-ctx.Done():
			c.abandon(p, fmt.Errorf("camera %s: command %q: %w", c.name, command, ctx.Err()))
		case <-timer:
			c.abandon(p, fmt.Errorf("camera %s: command %q: %w after %s", c.name, command, ErrTimeout, timeout))
		}
	}

	<-p.done // every reply received so far has been delivered
	return p.result, p.err
}

// abandon ends p with err unless it has ended already. Its id stays in
// flight (see SendWithTimeout) until a terminal reply or a disconnect.
func (c *Client) abandon(p *pending, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.finished {
		return
	}
	p.abandoned = true
	p.finish(Result{}, err)
}

// session is one established connection.
type session struct {
	conn net.Conn
	wmu  sync.Mutex // one command line at a time

	dmu     sync.Mutex
	dropped error
}

// write writes one line, bounded by timeout and by ctx's deadline.
func (s *session) write(ctx context.Context, line []byte, timeout time.Duration) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := s.conn.Write(line)
	return err
}

// drop closes the connection, remembering the first cause.
func (s *session) drop(cause error) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if s.dropped != nil {
		return
	}
	if cause == nil {
		cause = io.EOF
	}
	s.dropped = cause
	_ = s.conn.Close()
}

func (s *session) cause() error {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	return s.dropped
}

// pending is one command in flight. Its result fields are guarded by the
// Client's mu until ended is closed, and read-only afterwards; its queue is
// guarded by its own qmu so delivery never needs the Client's lock.
type pending struct {
	id      int
	command string
	onReply func(clu.Reply)

	// Guarded by Client.mu.
	finished  bool
	abandoned bool // Send gave up; the id waits for the camera to finish
	result    Result
	err       error
	ended     chan struct{} // closed by finish

	qmu    sync.Mutex
	qcond  *sync.Cond
	queue  []clu.Reply
	closed bool          // no more replies will be queued
	done   chan struct{} // closed when deliver has returned
}

func newPending(id int, command string, onReply func(clu.Reply)) *pending {
	p := &pending{
		id:      id,
		command: command,
		onReply: onReply,
		ended:   make(chan struct{}),
		done:    make(chan struct{}),
	}
	p.qcond = sync.NewCond(&p.qmu)
	return p
}

// push queues a reply for delivery. It never blocks on onReply.
func (p *pending) push(r clu.Reply) {
	p.qmu.Lock()
	if !p.closed {
		p.queue = append(p.queue, r)
		p.qcond.Signal()
	}
	p.qmu.Unlock()
}

// finish records how the command ended and closes its queue. The caller
// holds Client.mu; only the first call counts.
func (p *pending) finish(res Result, err error) {
	if p.finished {
		return
	}
	p.finished = true
	p.result, p.err = res, err
	close(p.ended)

	p.qmu.Lock()
	p.closed = true
	p.qcond.Signal()
	p.qmu.Unlock()
}

// deliver calls onReply for every queued reply, in order, until the queue
// is closed and empty.
func (p *pending) deliver() {
	defer close(p.done)
	for {
		p.qmu.Lock()
		for len(p.queue) == 0 && !p.closed {
			p.qcond.Wait()
		}
		if len(p.queue) == 0 {
			p.qmu.Unlock()
			return
		}
		r := p.queue[0]
		p.queue[0] = clu.Reply{}
		p.queue = p.queue[1:]
		p.qmu.Unlock()
		if p.onReply != nil {
			p.onReply(r)
		}
	}
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
