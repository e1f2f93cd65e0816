package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/internal/loglimit"
	"github.com/sdss/fliswarm/pkg/linesession"
)

// Defaults for the zero values of Options.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = time.Second
	DefaultMaxLineBytes   = 1 << 20
	// DefaultPingInterval and DefaultPingTimeout: a connection on which
	// nothing was read for an interval gets a `ping`, and is dropped when
	// the camera does not answer it in time, so a camera that stops
	// answering is seen within 2×interval+timeout (8 s).
	DefaultPingInterval = 2 * time.Second
	DefaultPingTimeout  = 4 * time.Second
)

// DefaultKeepAlive is the TCP keepalive of a camera connection: a peer that
// vanished while the connection is idle is seen within about 11 s even
// without the pings.
var DefaultKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}

var (
	// ErrNotConnected is returned (wrapped, naming the camera) by Send when
	// there is no connection to the camera actor.
	ErrNotConnected = errors.New("not connected")
	// ErrDisconnected is returned (wrapped, naming the camera and the
	// command) by Send when the connection dropped while the command ran.
	ErrDisconnected = errors.New("connection lost")
	// ErrTimeout is returned (wrapped) by Send when the per-command timeout
	// fired before the camera finished the command.
	ErrTimeout = linesession.ErrTimeout
	// ErrAlreadyRunning is returned by Run when another Run of the same
	// Client is active.
	ErrAlreadyRunning = errors.New("device: Run already active")
	// ErrWrongSender is the reason a connection is refused when the actor
	// answering on the camera's port is not the node's camera (the sender
	// of its replies is not the client's name).
	ErrWrongSender = errors.New("the actor answering is not this node's camera")
	// ErrNotAnswering is the reason a connection is dropped when the
	// camera did not answer a liveness ping in time.
	ErrNotAnswering = errors.New("camera not answering")

	// errDisconnectRequested is the cause of a drop asked for by Disconnect.
	errDisconnectRequested = errors.New("disconnect requested")
	// errPaused is the cause of a drop asked for by Pause.
	errPaused = errors.New("connection paused")
)

// UndecodableText starts the text of the reply a Client makes of a camera
// line it cannot decode (see Options.OnUnsolicited).
const UndecodableText = "undecodable camera line: "

// Options tune a Client. The zero value is usable.
type Options struct {
	// Logger receives the client's logs; it is given the value
	// camera=<name>. Default: discard.
	Logger logr.Logger
	// DialTimeout bounds one connection attempt. Default 2s.
	DialTimeout time.Duration
	// KeepAlive is the connection's TCP keepalive. Default
	// DefaultKeepAlive.
	KeepAlive net.KeepAliveConfig
	// CommandTimeout, when positive, bounds one command from send to
	// terminal reply. Default (0 or negative): none; a command ends when
	// the camera finishes it, when the connection drops (also when the
	// camera stops answering the liveness pings), or when the caller's
	// context ends. SendWithTimeout overrides it per command.
	CommandTimeout time.Duration
	// WriteTimeout bounds writing one command line. Default 10s. A write
	// that fails or times out drops the connection, because the stream can
	// no longer be trusted.
	WriteTimeout time.Duration
	// InitialBackoff is the first wait between failed connection attempts;
	// the wait then grows exponentially (with jitter) up to MaxBackoff and
	// starts again from InitialBackoff after a good connection. Defaults
	// 250ms and 1s: a camera whose port answers again is connected within
	// about DialTimeout+MaxBackoff without any Kick.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// PingInterval: when nothing was read from the camera for this long,
	// the client sends it a `ping`; PingTimeout bounds the answer, and a
	// camera that does not answer in time is disconnected (its commands in
	// flight end with ErrDisconnected, the cause ErrNotAnswering).
	// PingTimeout also bounds the handshake ping sent on every new
	// connection. Defaults 2s and 4s; a negative PingInterval turns the
	// idle pings off (not the handshake).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// AnySender accepts replies whatever their header's sender. By
	// default every reply's sender must be the client's name (the node's
	// camera is started with ACTOR_NAME=<node>); a connection whose
	// sender is another is dropped with ErrWrongSender and the client
	// stays disconnected, retrying with backoff.
	AnySender bool
	// MaxLineBytes is the longest reply line accepted; a longer line is
	// skipped (and reported, see OnUnsolicited), the connection stays up.
	// Default 1 MiB.
	MaxLineBytes int
	// OnUnsolicited receives replies whose command_id is 0 or belongs to
	// no command in flight (the camera's broadcasts), in arrival order,
	// once the connection is verified (earlier ones are held until then).
	// A line that cannot be decoded, or is too long, is given as a reply
	// of its own: code `w` (`f` when it looked like a command's end),
	// sender the client's name, data {"text": UndecodableText + line} —
	// to its command when its command_id can be made out, otherwise here.
	// Replies to a command whose Send gave up (timeout, context) are not
	// given to anyone: they are discarded and counted (Discarded). It is
	// called from the connection's reader goroutine: it must return
	// quickly and must not wait for a Send of this Client to finish.
	OnUnsolicited func(clu.Reply)
	// InlineReplies gives a command's replies to its onReply on the
	// connection's reader goroutine, as they are read, instead of on the
	// goroutine waiting in SendWithTimeout: one goroutine hand-over fewer
	// per reply, for an onReply that never waits (the actor's relay, which
	// only queues lines). A slow onReply then delays every reply of this
	// camera.
	InlineReplies bool
	// OnState is told about the connection: (true, nil) when a connection
	// is established and verified, (false, cause) when it ends and after
	// every failed connection attempt, so the caller can record the latest
	// reason. Calls come from Run's goroutine, one at a time, in order; it
	// must return quickly.
	OnState func(connected bool, err error)
}

func (o Options) withDefaults() Options {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if !o.KeepAlive.Enable && o.KeepAlive.Idle == 0 && o.KeepAlive.Interval == 0 && o.KeepAlive.Count == 0 {
		o.KeepAlive = DefaultKeepAlive
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
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
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

type session = linesession.Session[clu.Reply]

// Client is the connection to one flicamera actor.
//
// Lifecycle: Run keeps a connection up until its context ends, redialling
// with exponential backoff after a failure or a drop. A new connection is
// verified before it counts as connected: the camera must answer a `ping`
// within PingTimeout, as the actor named like the node (see AnySender).
// While connected, an idle connection is pinged every PingInterval and
// dropped when the camera stops answering. Kick skips the current backoff
// wait (the reconciler calls it when it knows the container has just been
// (re)started). Disconnect drops the connection and lets Run reconnect on
// its usual schedule; Pause drops it and keeps Run from dialling until
// Resume (use it around recreating the container). To stop for good,
// cancel Run's context.
//
// All methods are safe for concurrent use.
type Client struct {
	name   string
	addr   string
	opts   Options
	log    logr.Logger
	keeper *linesession.Keeper

	running   atomic.Bool
	discarded atomic.Uint64
	badLines  *loglimit.Limiter // undecodable and long lines, logged at most one a second

	mu     sync.Mutex
	cur    *session // the current connection, verified or not
	sess   *session // the current connection once verified; nil otherwise
	reason error    // why not connected (nil when connected)
}

// New returns a client for the camera actor called name (the node name,
// used in errors and logs, and the sender its replies must carry)
// listening at addr ("host:port"). It does not connect: call Run.
func New(name, addr string, opts Options) *Client {
	opts = opts.withDefaults()
	return &Client{
		name:     name,
		addr:     addr,
		opts:     opts,
		log:      opts.Logger.WithValues("camera", name),
		keeper:   linesession.NewKeeper(opts.InitialBackoff, opts.MaxBackoff),
		reason:   fmt.Errorf("camera %s: %w: not connected yet", name, ErrNotConnected),
		badLines: loglimit.New(time.Second, 1, nil),
	}
}

// Name returns the camera's name.
func (c *Client) Name() string { return c.name }

// Addr returns the address the client dials.
func (c *Client) Addr() string { return c.addr }

// Connected reports whether a verified connection to the camera is up now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A paused client is not connected even while its reader has not yet
	// seen the dropped connection.
	return c.sess != nil && c.sess.Err() == nil && !c.keeper.Paused()
}

// State returns whether the client is connected and, when it is not, the
// latest reason (a failed dial, a dropped connection, a wrong sender).
func (c *Client) State() (connected bool, reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.Err() == nil && !c.keeper.Paused() {
		return true, nil
	}
	return false, c.reason
}

// Discarded returns how many camera replies were discarded because the
// command they answer had been given up on (its user left, or it timed
// out) while the camera still ran it.
func (c *Client) Discarded() uint64 { return c.discarded.Load() }

// InFlight returns how many commands hold an id on the connection now
// (the client's own pings included, and commands given up on whose end the
// camera has not sent yet).
func (c *Client) InFlight() int {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	return s.InFlight()
}

// Kick makes Run dial now instead of waiting out its backoff, and restarts
// the backoff schedule. While a connection is up, or a dial is in
// progress, the kick is kept for the next wait: the first attempt after
// that is immediate (the reconciler kicks when it has just restarted the
// container, possibly before the old connection is seen to drop). It never
// overrides Pause.
func (c *Client) Kick() { c.keeper.Kick() }

// Started tells the client that the camera's container was just started:
// it dials now and, while the camera's port does not answer yet, again
// every StartedRetry for StartedWindow, instead of backing off (a camera
// is back as soon as it listens). Like Kick, it never overrides Pause.
func (c *Client) Started() { c.keeper.KickFor(StartedRetry, StartedWindow) }

// StartedRetry and StartedWindow: see Started.
const (
	StartedRetry  = 25 * time.Millisecond
	StartedWindow = 3 * time.Second
)

// Disconnect drops the current connection, if any. Every command in flight
// ends with ErrDisconnected. Run reconnects after its backoff wait (or at
// the next Kick).
func (c *Client) Disconnect() { c.drop(errDisconnectRequested) }

// Pause drops the current connection like Disconnect and keeps Run from
// dialling until Resume is called. Sends fail with ErrNotConnected
// meanwhile.
func (c *Client) Pause() {
	c.keeper.Pause()
	c.drop(errPaused)
}

// Resume ends a Pause and makes Run dial now.
func (c *Client) Resume() { c.keeper.Resume() }

func (c *Client) drop(cause error) {
	c.mu.Lock()
	s := c.cur
	c.mu.Unlock()
	if s != nil {
		s.Close(cause)
	}
}

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

// formatCommand returns the line formatter of a command.
func formatCommand(command string) func(dst []byte, id int) []byte {
	return func(dst []byte, id int) []byte {
		dst = strconv.AppendInt(dst, int64(id), 10)
		dst = append(dst, ' ')
		dst = append(dst, command...)
		return append(dst, '\n')
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
// onReply (which may be nil) in arrival order, from SendWithTimeout's own
// goroutine: a slow onReply delays only this command, never the
// connection's reader (with Options.InlineReplies, from the reader
// instead). SendWithTimeout returns only after its last onReply call has
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
// it arrives or the connection drops; replies arriving meanwhile are
// discarded (and counted, see Discarded), never taken for unsolicited
// ones nor for a newer command's.
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
	c.mu.Unlock()
	if s == nil || c.keeper.Paused() {
		return Result{}, fmt.Errorf("camera %s: cannot send %q: %w", c.name, command, ErrNotConnected)
	}
	call, err := s.Start(ctx, formatCommand(command), onReply)
	if err != nil {
		if errors.Is(err, linesession.ErrClosed) {
			return Result{}, fmt.Errorf("camera %s: cannot send %q: %w: %w", c.name, command, ErrNotConnected, err)
		}
		return Result{}, fmt.Errorf("camera %s: sending %q: %w", c.name, command, err)
	}
	if c.log.V(1).Enabled() {
		c.log.V(1).Info("sent command", "id", call.ID, "command", command)
	}
	final, err := call.Wait(ctx, timeout)
	switch {
	case err == nil:
		return Result{ID: call.ID, Code: final.Header.MessageCode, Final: final}, nil
	case errors.Is(err, linesession.ErrClosed):
		return Result{}, fmt.Errorf("camera %s disconnected while running %q: %w: %w", c.name, command, ErrDisconnected, err)
	default:
		return Result{}, fmt.Errorf("camera %s: command %q: %w", c.name, command, err)
	}
}
