package opscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// Defaults of the server options.
const (
	DefaultMaxLineLength = 64 << 10
	DefaultQueueLength   = 1024
	DefaultMaxCommands   = 256
	DefaultVersion       = "unknown"
)

// When a user's connection reaches end of file its commands are cancelled;
// for a user that only closed its sending side, closeGrace bounds the wait
// for those commands to write their last replies, and drainTimeout the time
// spent writing the replies still queued, before the connection is closed.
const (
	closeGrace   = 5 * time.Second
	drainTimeout = 5 * time.Second
)

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default logr.Discard()).
func WithLogger(log logr.Logger) Option { return func(s *Server) { s.log = log } }

// WithVersion sets the version told to every new user (default "unknown").
func WithVersion(version string) Option { return func(s *Server) { s.version = version } }

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

// WithQueueLength sets how many reply lines may wait to be written to one
// user (default 1024). A user whose queue overflows is disconnected, so
// that a client that does not read never delays anyone else.
func WithQueueLength(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.queueLen = n
		}
	}
}

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
type Server struct {
	addr     string
	handler  Handler
	log      logr.Logger
	version  string
	maxLine  int
	queueLen int
	maxCmds  int

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
		addr:      addr,
		handler:   h,
		log:       logr.Discard(),
		version:   DefaultVersion,
		maxLine:   DefaultMaxLineLength,
		queueLen:  DefaultQueueLength,
		maxCmds:   DefaultMaxCommands,
		listening: make(chan struct{}),
		users:     make(map[int]*conn),
	}
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

	delay := time.Duration(0)
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
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error(err, "accept failed; retrying", "in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
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
	s.broadcastLine(AppendReply(nil, 0, 0, code, kws...))
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
	c.send(AppendReply(nil, uid, cmdID, code, kws...))
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
	cmd := newCommand(l, 0, s.broadcastLine, s.log)
	s.run(ctx, cmd)
	return nil
}

func (s *Server) broadcastLine(line []byte) {
	line = append(line, '\n')
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.users {
		c.enqueue(line)
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
			cmd.Fail(KW("error", "command ended without a reply"))
		}
	}()
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

	c.send(AppendReply(nil, id, 0, Info, KW("yourUserID", id), KW("num_users", len(s.users))))
	ids := make([]int, 0, len(s.users))
	for uid := range s.users {
		ids = append(ids, uid)
	}
	sort.Ints(ids)
	for _, uid := range ids {
		line := AppendReply(nil, 0, 0, Info, KW("UserInfo", uid, s.users[uid].host))
		line = append(line, '\n')
		for _, u := range s.users {
			u.enqueue(line)
		}
	}
	c.send(AppendReply(nil, id, 0, Info, KW("version", Quoted(s.version))))
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users[c.id] == c {
		delete(s.users, c.id)
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

	out        chan []byte   // reply lines, newline included
	quit       chan struct{} // closed by abort
	drain      chan struct{} // closed to make the writer flush and stop
	writerDone chan struct{}
	abortOnce  sync.Once

	inflight atomic.Int64
	cmds     sync.WaitGroup
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	c := &conn{
		srv:        s,
		nc:         nc,
		addr:       nc.RemoteAddr().String(),
		out:        make(chan []byte, s.queueLen),
		quit:       make(chan struct{}),
		drain:      make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	c.host = c.addr
	if h, _, err := net.SplitHostPort(c.addr); err == nil {
		c.host = h
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { c.abort("server stopping", nil) })
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
	c.abort("", nil)
	<-c.writerDone
	s.unregister(c)
	s.log.Info("user disconnected", "user", c.id, "addr", c.addr)
}

// abort closes the connection at once and cancels its commands. It does
// not take the server's lock, so it may be called while holding it.
func (c *conn) abort(reason string, err error) {
	c.abortOnce.Do(func() {
		if reason != "" {
			c.srv.log.Info("dropping user", "user", c.id, "addr", c.addr, "reason", reason, "error", err)
		}
		c.cancel()
		close(c.quit)
		c.nc.Close()
	})
}

// send queues a reply line (without its newline).
func (c *conn) send(line []byte) { c.enqueue(append(line, '\n')) }

// enqueue queues a line without ever blocking; if the queue is full the
// user is not reading and is dropped.
func (c *conn) enqueue(line []byte) {
	select {
	case <-c.quit:
		return
	default:
	}
	select {
	case c.out <- line:
	default:
		c.abort("outgoing queue full: the client is not reading", nil)
	}
}

func (c *conn) writeLoop() {
	defer close(c.writerDone)
	bw := bufio.NewWriterSize(c.nc, 32<<10)
	write := func(b []byte) bool {
		if _, err := bw.Write(b); err != nil {
			c.abort("write failed", err)
			return false
		}
		return true
	}
	flush := func() bool {
		if err := bw.Flush(); err != nil {
			c.abort("write failed", err)
			return false
		}
		return true
	}
	for {
		select {
		case b := <-c.out:
			if !write(b) {
				return
			}
			for more := true; more; {
				select {
				case b := <-c.out:
					if !write(b) {
						return
					}
				default:
					more = false
				}
			}
			if !flush() {
				return
			}
		case <-c.drain:
			_ = c.nc.SetWriteDeadline(time.Now().Add(drainTimeout))
			for {
				select {
				case b := <-c.out:
					if !write(b) {
						return
					}
				default:
					flush()
					return
				}
			}
		case <-c.quit:
			return
		}
	}
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
	c.srv.log.Info("command line too long", "user", c.id, "cmdID", l.ID, "max", c.srv.maxLine)
	c.send(AppendReply(nil, c.id, l.ID, Failed,
		KW("error", fmt.Sprintf("command line longer than %d bytes", c.srv.maxLine))))
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
		s.log.Info("bad command line", "user", c.id, "cmdID", l.ID, "reason", reason)
		c.send(AppendReply(nil, c.id, l.ID, Failed, KW("error", reason)))
		return
	}
	if c.inflight.Load() >= int64(s.maxCmds) {
		s.log.Info("too many commands running", "user", c.id, "cmdID", l.ID, "verb", l.Verb)
		c.send(AppendReply(nil, c.id, l.ID, Failed,
			KW("error", fmt.Sprintf("too many commands running (at most %d)", s.maxCmds))))
		return
	}
	if s.log.V(1).Enabled() {
		s.log.V(1).Info("command", "user", c.id, "cmdID", l.ID, "commander", l.Commander, "body", l.Raw)
	}

	cmd := newCommand(l, c.id, c.send, s.log)
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
