package opscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/internal/loglimit"
)

// Defaults of the server options.
const (
	DefaultMaxLineLength = 64 << 10
	DefaultMaxBacklog    = 64 << 20
	DefaultStallTimeout  = 60 * time.Second
	DefaultMaxCommands   = 256
	DefaultVersion       = "unknown"
	DefaultActorName     = "fliswarm"
)

// When a user's connection reaches end of file its commands are cancelled;
// for a user that only closed its sending side, closeGrace bounds the wait
// for those commands to write their last replies, and drainTimeout the time
// spent writing the replies still queued, before the connection is closed.
const (
	closeGrace   = 5 * time.Second
	drainTimeout = 5 * time.Second
)

// Bad input is logged at most badLogBurst lines at once per server, and
// one more every badLogEvery after that.
const (
	badLogBurst = 5
	badLogEvery = time.Second / badLogBurst
)

// The accept loop's retry after a failed accept (out of file descriptors
// and the like) waits from acceptRetryMin, doubling up to acceptRetryMax.
const (
	acceptRetryMin = 5 * time.Millisecond
	acceptRetryMax = time.Second
)

// A writer's buffer larger than keepBuffer is released once written, so
// that memory goes back down after a flood.
const keepBuffer = 1 << 20

// refuseWriteTimeout bounds the write of a refused connection's reason.
const refuseWriteTimeout = time.Second

// timeNow is the clock of deadlines.
var timeNow = time.Now

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default logr.Discard()).
func WithLogger(log logr.Logger) Option { return func(s *Server) { s.log = log } }

// WithVersion sets the version told to every new user (default "unknown").
func WithVersion(version string) Option { return func(s *Server) { s.version = version } }

// WithActorName sets the actor's name (default "fliswarm"): the first value
// of every `error` keyword the server and Command.Failf write for a failure
// that concerns no node (see ErrorKW).
func WithActorName(name string) Option {
	return func(s *Server) {
		if name != "" {
			s.actor = name
		}
	}
}

// WithMaxLineLength sets the longest command line accepted, in bytes
// without the newline (default 64 KiB). A longer line is discarded and
// answered with a failure.
func WithMaxLineLength(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxLine = n
		}
	}
}

// WithMaxBacklog sets how many bytes of replies may wait to be written to
// one user (default 64 MiB). A user whose backlog would grow beyond it is
// disconnected. Replies are never dropped otherwise: a user that reads
// slowly gets every line, in order, however long it takes.
func WithMaxBacklog(bytes int) Option {
	return func(s *Server) {
		if bytes > 0 {
			s.maxBacklog = bytes
		}
	}
}

// WithStallTimeout sets how long a user with replies waiting may go without
// any write progress (its connection accepts not one byte) before it is
// disconnected (default 60 s).
func WithStallTimeout(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.stall = d
		}
	}
}

// DefaultStartHold is how long a command's `>` is held back by default
// (see WithStartHold).
const DefaultStartHold = 2 * time.Millisecond

// WithStartHold holds a command's `>` back for up to d, so that a command
// that ends within d reaches its user in one write (its `>`, any replies
// and its end) rather than one for the `>` and another for the rest; the
// order of the replies is unchanged, and a longer command's `>` is only d
// late. 0 sends every `>` at once. Default DefaultStartHold.
func WithStartHold(d time.Duration) Option { return func(s *Server) { s.holdStart = max(d, 0) } }

// WithMaxCommands sets how many commands of one user may run at once
// (default 256); a command beyond that fails at once.
func WithMaxCommands(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxCmds = n
		}
	}
}

// User is a connected user.
type User struct {
	// ID is the user id, the smallest free integer from 1 at connection.
	ID int
	// Addr is the remote address, host:port.
	Addr string
}

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

// Users returns the connected users, by id.
func (s *Server) Users() []User {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]User, 0, len(s.users))
	for _, c := range s.users {
		out = append(out, User{ID: c.id, Addr: c.addr})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Broadcast sends an unsolicited reply (uid 0, cmdId 0) to every user. It
// never blocks on a slow user.
func (s *Server) Broadcast(code Code, kws ...Keyword) {
	b := getScratch()
	*b = append(AppendReply(*b, 0, 0, code, kws...), '\n')
	s.broadcastLine(*b)
	putScratch(b)
}

// WriteUser sends a reply to one user, tagged with uid and cmdID, and
// reports whether that user is connected. Prefer the Command's methods for
// replies to a command: they stay with the connection that sent it.
func (s *Server) WriteUser(uid, cmdID int, code Code, kws ...Keyword) bool {
	s.mu.RLock()
	c := s.users[uid]
	s.mu.RUnlock()
	if c == nil {
		return false
	}
	c.reply(uid, cmdID, code, kws...)
	return true
}

// RunBroadcast runs body (a command body, without commander or id) through
// the Handler as the actor's own command, with every reply broadcast (uid
// 0, cmdId 0), and returns when it has ended. It is for periodic commands
// such as a status every few minutes. It fails only for a body that cannot
// be parsed.
func (s *Server) RunBroadcast(ctx context.Context, body string) error {
	words, err := SplitWords(body)
	if err != nil {
		return err
	}
	if len(words) == 0 || words[0] == "" {
		return &ParseError{Reason: "no command given"}
	}
	l := Line{Verb: words[0], Args: words[1:], Raw: trimBlanks(body)}
	cmd := newCommand(l, 0, s.actor, func(b []byte, _ bool) { s.broadcastLine(b) }, s.log)
	s.run(ctx, cmd)
	return nil
}

// broadcastLine queues a line (newline included) to every user.
func (s *Server) broadcastLine(line []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.users {
		c.queue(line)
	}
}

// run sends the command's `>`, runs the handler and makes sure the command
// ends, whatever the handler does.
func (s *Server) run(ctx context.Context, cmd *Command) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "command handler panicked",
				"user", cmd.UserID, "cmdID", cmd.ID, "verb", cmd.Verb)
			cmd.Failf("Command %q failed: internal error: %v", cmd.Verb, r)
		}
		if !cmd.Done() {
			s.log.Info("command ended without a reply", "user", cmd.UserID, "cmdID", cmd.ID, "verb", cmd.Verb)
			cmd.Failf("command ended without a reply")
		}
	}()
	if s.holdStart > 0 {
		cmd.holdStart(s.holdStart)
	}
	cmd.Write(Running)
	s.handler.Handle(ctx, cmd)
}

// register gives c the smallest free user id and greets it.
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := 1
	for s.users[id] != nil {
		id++
	}
	c.id = id
	s.users[id] = c
	s.observer.UsersChanged(len(s.users))
	if s.userHook != nil {
		s.userHook(User{ID: id, Addr: c.addr}, true)
	}

	c.reply(id, 0, Info, KW("yourUserID", id), KW("num_users", len(s.users)))
	ids := make([]int, 0, len(s.users))
	for uid := range s.users {
		ids = append(ids, uid)
	}
	sort.Ints(ids)
	for _, uid := range ids {
		line := AppendReply(nil, 0, 0, Info, KW("UserInfo", uid, s.users[uid].host))
		line = append(line, '\n')
		for _, u := range s.users {
			u.queue(line)
		}
	}
	c.reply(id, 0, Info, KW("version", Quoted(s.version)))
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[c.id] == c {
		delete(s.users, c.id)
		s.observer.UsersChanged(len(s.users))
		if s.userHook != nil {
			s.userHook(User{ID: c.id, Addr: c.addr}, false)
		}
	}
}

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

// reply queues a reply line to this user.
func (c *conn) reply(uid, cmdID int, code Code, kws ...Keyword) {
	b := getScratch()
	*b = append(AppendReply(*b, uid, cmdID, code, kws...), '\n')
	c.enqueue(*b, code.Terminal())
	putScratch(b)
}

// queue copies lines to the backlog for the writer (see enqueue).
func (c *conn) queue(lines []byte) { c.enqueue(lines, false) }

// enqueue copies lines (each ending in a newline) to the backlog without
// ever blocking; a user whose backlog would exceed the bound is dropped.
//
// A command's last lines (final) are the ones a client waits for: when
// nothing is queued or being written, the sender writes them itself, as
// far as the socket takes them without waiting, and leaves the rest to the
// writer. That saves a hand-over to the writer on every command's round
// trip. Other lines always go through the writer, which sends everything
// queued in one write (a flood is not written a line per syscall).
func (c *conn) enqueue(line []byte, final bool) {
	c.omu.Lock()
	if c.closed {
		c.omu.Unlock()
		return
	}
	if backlog := len(c.obuf) + c.writing + len(line); backlog > c.srv.maxBacklog {
		c.omu.Unlock()
		c.srv.observer.UserDropped()
		c.abort("backlog over the limit: the client is not reading fast enough",
			"backlogBytes", backlog, "maxBacklogBytes", c.srv.maxBacklog)
		return
	}
	if final && c.raw != nil && len(c.obuf) == 0 && c.writing == 0 {
		c.writing = len(line) // keeps the writer off until it is done
		c.omu.Unlock()
		n := c.raw.tryWrite(line)
		c.omu.Lock()
		c.writing = 0
		if n < len(line) && !c.closed {
			// The socket is full: what is left goes before anything queued
			// meanwhile.
			rest := make([]byte, 0, len(line)-n+len(c.obuf))
			c.obuf = append(append(rest, line[n:]...), c.obuf...)
		}
		pending := len(c.obuf) > 0 && !c.closed
		c.omu.Unlock()
		if pending {
			c.wakeWriter()
		}
		return
	}
	wasEmpty := len(c.obuf) == 0
	c.obuf = append(c.obuf, line...)
	c.omu.Unlock()
	if wasEmpty {
		c.wakeWriter()
	}
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// backlog returns the bytes queued and not yet written.
func (c *conn) backlog() int {
	c.omu.Lock()
	defer c.omu.Unlock()
	return len(c.obuf) + c.writing
}

// writeLoop writes the backlog: each time, everything queued so far in one
// write, until the connection is aborted or drained.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var spare []byte
	// take swaps the backlog for the spare buffer; nil when it is empty,
	// or while a sender writes (busy: it wakes the writer when done).
	take := func() (b []byte, busy bool) {
		c.omu.Lock()
		defer c.omu.Unlock()
		// writing is not the writer's own here: a sender is writing.
		if len(c.obuf) == 0 || c.closed || c.writing > 0 {
			return nil, c.writing > 0 && !c.closed
		}
		b = c.obuf
		c.obuf = spare[:0]
		c.writing = len(b)
		return b, false
	}
	// done keeps b for the next take; writeAll has brought writing to 0.
	done := func(b []byte) {
		if cap(b) <= keepBuffer {
			spare = b[:0]
		} else {
			spare = nil
		}
	}
	for {
		select {
		case <-c.wake:
			for b, _ := take(); b != nil; b, _ = take() {
				if !c.writeAll(b) {
					return
				}
				done(b)
			}
		case <-c.drain:
			end := time.Now().Add(drainTimeout)
			_ = c.nc.SetWriteDeadline(end)
			for {
				b, busy := take()
				if b == nil {
					if !busy || time.Now().After(end) {
						return
					}
					time.Sleep(time.Millisecond) // a sender is writing
					continue
				}
				if _, err := c.nc.Write(b); err != nil {
					return
				}
				c.omu.Lock()
				c.writing = 0
				c.omu.Unlock()
				done(b)
			}
		case <-c.quit:
			return
		}
	}
}

// writeAll writes b, dropping the user when it has made no progress for
// the stall time. Each write's deadline is a fraction of the stall time
// (and never beyond the stall time after the last progress), so that a
// slow reader's partial progress is seen: a user is dropped no earlier than
// the stall time after its last progress, and at most one such fraction
// later.
func (c *conn) writeAll(b []byte) bool {
	stall := c.srv.stall
	step := min(max(stall/4, time.Millisecond), 5*time.Second)
	last := time.Now()
	for len(b) > 0 {
		deadline := time.Now().Add(step)
		if end := last.Add(stall); end.Before(deadline) {
			deadline = end
		}
		_ = c.nc.SetWriteDeadline(deadline)
		n, err := c.nc.Write(b)
		b = b[n:]
		if n > 0 {
			last = time.Now()
			c.omu.Lock()
			c.writing -= n
			c.omu.Unlock()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if stalled := time.Since(last); stalled >= stall {
				c.srv.observer.UserDropped()
				c.abort("no write progress: the client is not reading",
					"stalledFor", stalled.Round(time.Millisecond).String(), "backlogBytes", c.backlog())
				return false
			}
		default:
			c.abort("write failed", "error", err)
			return false
		}
	}
	return true
}

// readLoop reads command lines until the connection ends; it reports
// whether it ended cleanly (the user closed its sending side).
func (c *conn) readLoop() bool {
	br := bufio.NewReaderSize(c.nc, c.srv.maxLine+2) // room for "\r\n"
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			prefix := string(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			c.lineTooLong(prefix)
		} else if len(line) > 0 {
			c.handleLine(string(line))
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

func (c *conn) lineTooLong(prefix string) {
	l, _, _ := splitHeader(trimBlanks(prefix))
	c.logBad("command line too long", "user", c.id, "cmdID", l.ID, "max", c.srv.maxLine)
	c.reply(c.id, l.ID, Failed,
		ErrorKW(c.srv.actor, fmt.Sprintf("command line longer than %d bytes", c.srv.maxLine)))
}

// logBad logs a problem with the user's input, rate-limited per server so
// that a client sending garbage cannot flood the log; the next line logged
// says how many were suppressed.
func (c *conn) logBad(msg string, keysAndValues ...any) {
	ok, suppressed := c.srv.badLog.Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		keysAndValues = append(keysAndValues, "suppressed", suppressed)
	}
	c.srv.log.Info(msg, keysAndValues...)
}

func (c *conn) handleLine(raw string) {
	s := c.srv
	l, err := ParseLine(raw)
	if errors.Is(err, ErrEmptyLine) {
		return
	}
	if n := len(strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")); err == nil && n > s.maxLine {
		err = &ParseError{Reason: fmt.Sprintf("command line longer than %d bytes", s.maxLine)}
	}
	if err != nil {
		reason := err.Error()
		var pe *ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		c.logBad("bad command line", "user", c.id, "cmdID", l.ID, "reason", reason)
		c.reply(c.id, l.ID, Failed, ErrorKW(s.actor, reason))
		return
	}
	if c.inflight.Load() >= int64(s.maxCmds) {
		c.logBad("too many commands running", "user", c.id, "cmdID", l.ID, "verb", l.Verb)
		c.reply(c.id, l.ID, Failed,
			ErrorKW(s.actor, fmt.Sprintf("too many commands running (at most %d)", s.maxCmds)))
		return
	}
	if s.log.V(1).Enabled() {
		s.log.V(1).Info("command", "user", c.id, "cmdID", l.ID, "commander", l.Commander, "body", l.Raw)
	}

	cmd := newCommand(l, c.id, s.actor, c.enqueue, s.log)
	ctx, cancel := context.WithCancel(c.ctx)
	c.inflight.Add(1)
	c.cmds.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer c.cmds.Done()
		defer c.inflight.Add(-1)
		defer cancel()
		s.run(ctx, cmd)
	}()
}
