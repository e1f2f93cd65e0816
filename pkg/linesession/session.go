package linesession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sdss/fliswarm/pkg/internal/rawsock"
)

// Defaults of the zero Config fields.
const (
	DefaultMaxLineBytes = 1 << 20
	DefaultWriteTimeout = 10 * time.Second
)

var (
	// ErrClosed ends every command in flight when the connection ends; the
	// cause is wrapped beside it.
	ErrClosed = errors.New("connection closed")
	// ErrTimeout ends a command whose timeout passed first.
	ErrTimeout = errors.New("timed out")
	// ErrBusy is TryStart's answer while another command line is being
	// written: nothing was sent, and Start would wait.
	ErrBusy = errors.New("another command line is being written")
	// ErrSkip, returned by Config.Decode, makes the session ignore a line
	// silently (a line the protocol says to ignore).
	ErrSkip = errors.New("line skipped")
)

// Config describes one protocol's replies and what to do with the lines
// that belong to no command. Decode is required.
type Config[R any] struct {
	// Decode parses one reply line (without its line break; the slice is
	// only valid during the call). It returns the reply, the id of the
	// command it belongs to (0 for none) and whether it ends that command.
	// An error other than ErrSkip goes to OnBadLine.
	Decode func(line []byte) (reply R, id int, terminal bool, err error)
	// Check, when set, vets every decoded reply before it is routed; an
	// error drops the connection with that cause.
	Check func(R) error
	// SequentialIDs numbers commands 1, 2, 3, ... (wrapping, skipping ids
	// in flight), as a hub commander does; otherwise each command gets the
	// smallest id not in flight, as the camera protocol wants.
	SequentialIDs bool
	// Inline calls a command's onReply on the reading goroutine (it must
	// then be quick); otherwise the goroutine waiting on the command
	// (Call.Wait) delivers its replies in order, so that a slow onReply
	// delays only its own command.
	Inline bool
	// MaxLineBytes is the longest reply line read (default 1 MiB); a
	// longer one is skipped and reported to OnLongLine, and the connection
	// stays up.
	MaxLineBytes int
	// WriteTimeout bounds writing one command line (default 10 s). A write
	// that fails drops the connection: the stream can no longer be
	// trusted.
	WriteTimeout time.Duration
	// OnUnsolicited receives the replies with id 0 or an id not in flight,
	// on the reading goroutine, in order.
	OnUnsolicited func(R)
	// OnDiscard receives the replies of commands whose caller gave up
	// (timeout, context) while the peer still runs them: they belong to
	// nobody any more. Default: dropped.
	OnDiscard func(R)
	// OnBadLine receives lines Decode rejected.
	OnBadLine func(line []byte, err error)
	// DecodeLong, when set, is given each over-long line's first bytes
	// and its length, and its result is routed like a decoded line's (an
	// error skips it). Otherwise such lines are skipped.
	DecodeLong func(prefix []byte, length int) (reply R, id int, terminal bool, err error)
}

// Session is one established connection carrying numbered commands.
// Serve reads and routes the replies; Start sends a command. All methods
// are safe for concurrent use.
type Session[R any] struct {
	conn net.Conn
	cfg  Config[R]

	wmu  sync.Mutex // one command line at a time
	wbuf []byte
	raw  syscall.RawConn // conn's socket, for writes that never wait; nil if none

	mu      sync.Mutex
	pending map[int]*Call[R]
	nextID  int
	closed  bool // no more commands are accepted

	closeOnce sync.Once
	cause     error // set once, before done is closed
	done      chan struct{}

	active    atomic.Bool // a line was read since the last TakeActivity
	discarded atomic.Uint64
}

// New returns a session on conn. Call Serve to read its replies.
func New[R any](conn net.Conn, cfg Config[R]) *Session[R] {
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = DefaultMaxLineBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return &Session[R]{
		conn:    conn,
		raw:     rawsock.Of(conn),
		cfg:     cfg,
		pending: make(map[int]*Call[R]),
		done:    make(chan struct{}),
	}
}

// Close drops the connection with cause (the first cause counts). Serve
// then ends every command in flight.
func (s *Session[R]) Close(cause error) {
	if cause == nil {
		cause = io.EOF
	}
	s.closeOnce.Do(func() {
		s.cause = cause
		close(s.done)
		_ = s.conn.Close()
	})
}

// Done is closed when the connection has been dropped (by Close, or
// because reading failed).
func (s *Session[R]) Done() <-chan struct{} { return s.done }

// Err returns why the connection was dropped, nil while it is up.
func (s *Session[R]) Err() error {
	select {
	case <-s.done:
		return s.cause
	default:
		return nil
	}
}

// TakeActivity reports whether a line was read since its last call.
func (s *Session[R]) TakeActivity() bool { return s.active.Swap(false) }

// Discarded returns how many replies went to commands given up on.
func (s *Session[R]) Discarded() uint64 { return s.discarded.Load() }

// InFlight returns the number of commands whose id is reserved.
func (s *Session[R]) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// Serve reads reply lines from r (the connection when nil; pass the
// reader that consumed a greeting so nothing buffered is lost) until
// reading fails or Close is called. It then ends every command in flight
// with ErrClosed and returns the cause.
func (s *Session[R]) Serve(r io.Reader) error {
	if r == nil {
		r = s.conn
	}
	err := s.readLoop(r)
	s.Close(err)
	cause := s.cause

	s.mu.Lock()
	s.closed = true
	ended := s.pending
	s.pending = make(map[int]*Call[R])
	s.mu.Unlock()
	for _, c := range ended {
		c.finish(zero[R](), false, fmt.Errorf("%w: %w", ErrClosed, cause))
	}
	return cause
}

func zero[R any]() (r R) { return r }

// Start sends a command: it reserves an id, writes the line format
// appends to dst for that id (with its line break), and returns the Call
// to wait on. onReply (may be nil) gets every reply with the id, the
// terminal one included, in order (see Config.Inline). ctx's deadline
// also bounds the write. An error means nothing is in flight: the session
// is closed, or the write failed (the session is then dropped).
func (s *Session[R]) Start(ctx context.Context, format func(dst []byte, id int) []byte, onReply func(R)) (*Call[R], error) {
	c, err := s.reserve(onReply)
	if err != nil {
		return nil, err
	}
	s.wmu.Lock()
	if err := s.writeLine(ctx, c, format, true); err != nil {
		return nil, err
	}
	return c, nil
}

// TryStart is Start for a caller that must not wait: on the reading
// goroutine of another connection, say. When another command line is being
// written it returns ErrBusy at once and nothing is in flight. Otherwise
// the line goes to the socket without waiting, and when the socket does not
// take all of it, a goroutine of its own writes the rest (bounded like
// Start's write; a failed write ends the call with its error and drops the
// session). The call is in flight when the error is nil; use WhenDone (or
// Wait) for its end.
func (s *Session[R]) TryStart(ctx context.Context, format func(dst []byte, id int) []byte, onReply func(R)) (*Call[R], error) {
	if !s.wmu.TryLock() {
		return nil, ErrBusy
	}
	c, err := s.reserve(onReply)
	if err != nil {
		s.wmu.Unlock()
		return nil, err
	}
	_ = s.writeLine(ctx, c, format, false) // a failure ends c
	return c, nil
}

// reserve makes a call with a free id, in flight.
func (s *Session[R]) reserve(onReply func(R)) (*Call[R], error) {
	c := &Call[R]{s: s, onReply: onReply, inline: s.cfg.Inline, ended: make(chan struct{})}
	if !c.inline && onReply != nil {
		c.wake = make(chan struct{}, 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrClosed, s.errOrEOF())
	}
	c.ID = s.allocIDLocked()
	s.pending[c.ID] = c
	return c, nil
}

// writeLine writes c's command line; s.wmu is held and released here (or
// by the goroutine finishing the write). The line first goes to the socket
// without waiting: with room in the socket's buffer, the common case, that
// is the whole write, with no deadline to arm. What the socket does not
// take is written the ordinary way under a deadline, here when wait is
// set, otherwise by a goroutine of its own, so that writeLine never waits.
// A failed write ends c with the error and drops the session.
func (s *Session[R]) writeLine(ctx context.Context, c *Call[R], format func(dst []byte, id int) []byte, wait bool) error {
	s.wbuf = format(s.wbuf[:0], c.ID)
	n := rawsock.WriteNow(s.raw, s.wbuf)
	if n == len(s.wbuf) {
		s.releaseBufLocked()
		s.wmu.Unlock()
		return nil
	}
	finish := func() error {
		err := s.writeRest(ctx, s.wbuf[n:])
		s.releaseBufLocked()
		s.wmu.Unlock()
		if err != nil {
			s.mu.Lock()
			if s.pending[c.ID] == c {
				delete(s.pending, c.ID)
			}
			s.mu.Unlock()
			c.finish(zero[R](), false, err)
			s.Close(fmt.Errorf("writing a command: %w", err))
		}
		return err
	}
	if wait {
		return finish()
	}
	go func() { _ = finish() }()
	return nil
}

// writeRest writes b under a deadline (WriteTimeout, or ctx's when
// sooner); s.wmu is held.
func (s *Session[R]) writeRest(ctx context.Context, b []byte) error {
	deadline := time.Now().Add(s.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := s.conn.Write(b)
	if err == nil && s.raw != nil {
		// The next line's write without waiting must not meet this
		// deadline once it has passed.
		err = s.conn.SetWriteDeadline(time.Time{})
	}
	return err
}

// releaseBufLocked drops a command buffer grown huge; s.wmu is held.
func (s *Session[R]) releaseBufLocked() {
	if cap(s.wbuf) > 64<<10 {
		s.wbuf = nil
	}
}

func (s *Session[R]) errOrEOF() error {
	if err := s.Err(); err != nil {
		return err
	}
	return io.EOF
}

// allocIDLocked picks the next command id; s.mu is held.
func (s *Session[R]) allocIDLocked() int {
	if !s.cfg.SequentialIDs {
		id := 1
		for s.pending[id] != nil {
			id++
		}
		return id
	}
	id := s.nextID
	for {
		id++
		if id <= 0 || id > 1<<31-1 {
			id = 1
		}
		if s.pending[id] == nil {
			break
		}
	}
	s.nextID = id
	return id
}
