package camsim

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
)

const (
	// MaxLineLength is the longest command line accepted; a longer line is
	// discarded and answered with a failure.
	MaxLineLength = 64 * 1024
	// maxInFlight bounds the commands one connection may have running; the
	// next one fails until one of them ends.
	maxInFlight = 256
	// writeTimeout bounds one reply write, so that a client that stops
	// reading is dropped instead of stalling broadcasts.
	writeTimeout = 10 * time.Second
)

// Version is the version the simulator reports.
var Version = "0.1.0+sim"

// Config is what one simulated camera actor needs. Zero values take the
// defaults documented on each field.
type Config struct {
	// Name is the actor name, sent as header.sender (default "flicamera").
	Name string
	// Observatory is APO or LCO (default APO); it sets the camera name
	// suffix and the OBSERVAT card.
	Observatory string
	// DataDir is the root of the image tree (default /data).
	DataDir string
	// StatusInterval broadcasts status this often; 0 turns it off.
	StatusInterval time.Duration
	// ExposureScale multiplies the time an exposure waits; 0 makes
	// exposures instant. Negative values are treated as 0.
	ExposureScale float64
	// Readout is how long reading the chip takes (not scaled).
	Readout time.Duration
	// Width and Height are the unbinned chip size (default 2048x2048).
	Width, Height int
	// Logger receives the simulator's logs (default: discard).
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "flicamera"
	}
	c.Observatory = strings.ToUpper(c.Observatory)
	if c.Observatory == "" {
		c.Observatory = "APO"
	}
	if c.DataDir == "" {
		c.DataDir = "/data"
	}
	if c.ExposureScale < 0 {
		c.ExposureScale = 0
	}
	if c.Width <= 0 {
		c.Width = 2048
	}
	if c.Height <= 0 {
		c.Height = 2048
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// CameraName returns the name of the camera an actor drives: the actor
// name plus "n" at APO or "s" at LCO, except that any fvc actor drives
// fvc1n (fvc1s).
func CameraName(actor, observatory string) string {
	suffix := "n"
	if strings.EqualFold(observatory, "LCO") {
		suffix = "s"
	}
	if strings.HasPrefix(actor, "fvc") {
		return "fvc1" + suffix
	}
	return actor + suffix
}

// ExitError is returned by Serve when a client asked the process to exit
// with sim-exit.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("camsim: exit with code %d requested", e.Code) }

// Server is one simulated camera actor.
type Server struct {
	cfg Config
	cam *camera
	log *slog.Logger

	mu       sync.Mutex
	sessions map[*session]struct{}

	exit chan int
}

// New returns a server for the configuration.
func New(cfg Config) *Server {
	cfg.setDefaults()
	return &Server{
		cfg:      cfg,
		cam:      newCamera(cfg),
		log:      cfg.Logger,
		sessions: map[*session]struct{}{},
		exit:     make(chan int, 1),
	}
}

// CameraName returns the name of the simulated camera.
func (s *Server) CameraName() string { return s.cam.name }

// Serve accepts connections on ln until ctx is done (it then returns nil),
// a client sends sim-exit (it returns an *ExitError), or accepting fails.
// It closes ln and every connection, and waits for all of its goroutines,
// before it returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	acceptErr := make(chan error, 1)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			wg.Go(func() { s.serveConn(ctx, conn) })
		}
	})
	if s.cfg.StatusInterval > 0 {
		wg.Go(func() { s.broadcastStatus(ctx) })
	}

	var err error
	select {
	case <-ctx.Done():
	case code := <-s.exit:
		err = &ExitError{Code: code}
	case e := <-acceptErr:
		if ctx.Err() == nil {
			err = fmt.Errorf("camsim: accept: %w", e)
		}
	}
	cancel()
	ln.Close()
	s.mu.Lock()
	for ss := range s.sessions {
		ss.conn.Close()
	}
	s.mu.Unlock()
	wg.Wait()
	return err
}

// ListenAndServe listens on addr (host:port) and serves on it.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("camsim: listen: %w", err)
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "actor", s.cfg.Name, "camera", s.cam.name)
	return s.Serve(ctx, ln)
}

func (s *Server) requestExit(code int) {
	select {
	case s.exit <- code:
	default: // an exit is already on its way
	}
}

// broadcastStatus sends the status to every connection every interval.
func (s *Server) broadcastStatus(ctx context.Context) {
	t := time.NewTicker(s.cfg.StatusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data := clu.Object{{Key: "status", Value: s.cam.status()}}
		s.mu.Lock()
		all := make([]*session, 0, len(s.sessions))
		for ss := range s.sessions {
			all = append(all, ss)
		}
		s.mu.Unlock()
		for _, ss := range all {
			ss.send(0, clu.CodeInfo, false, data)
		}
	}
}

// session is one client connection.
type session struct {
	srv         *Server
	conn        replyConn
	commanderID string

	wmu    sync.Mutex // serialises writes so lines never interleave
	broken bool       // a write failed; later writes are dropped

	inflight chan struct{} // a slot per running command
}

// replyConn is the part of a connection replies are written to.
type replyConn interface {
	Write(b []byte) (int, error)
	SetWriteDeadline(t time.Time) error
	Close() error
}

func newCommanderID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

func (s *Server) newSession(conn replyConn) *session {
	return &session{
		srv:         s,
		conn:        conn,
		commanderID: newCommanderID(),
		inflight:    make(chan struct{}, maxInFlight),
	}
}

func (s *Server) serveConn(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	ss := s.newSession(conn)
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	log := s.log.With("peer", conn.RemoteAddr().String())
	log.Info("client connected")

	var cmds sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		cmds.Wait()
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
		log.Info("client disconnected")
	}()
	// Closing the connection is what unblocks the reader when the server
	// stops.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	ss.send(0, clu.CodeInfo, false, clu.Object{{Key: "text", Value: "Camera " + s.cam.name + " connected."}})

	r := bufio.NewReaderSize(conn, 4096)
	for {
		line, tooLong, err := readLine(r, MaxLineLength)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Debug("read failed", "err", err)
			}
			return
		}
		if tooLong {
			id, _, _ := clu.ParseCommand(line)
			log.Warn("command line too long", "limit", MaxLineLength)
			ss.fail(id, fmt.Sprintf("command line longer than %d bytes", MaxLineLength))
			continue
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if !isAsync(line) {
			ss.handleLine(ctx, line)
			continue
		}
		select {
		case ss.inflight <- struct{}{}:
		default:
			id, _, _ := clu.ParseCommand(line)
			ss.fail(id, fmt.Sprintf("too many commands in flight (%d)", maxInFlight))
			continue
		}
		cmds.Go(func() {
			defer func() { <-ss.inflight }()
			ss.handleLine(ctx, line)
		})
	}
}

// readLine reads one '\n'-terminated line without its terminator (a final
// unterminated line counts). A line longer than max is consumed up to its
// end; readLine then returns its first max bytes and tooLong.
func readLine(r *bufio.Reader, max int) (line string, tooLong bool, err error) {
	var buf []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(buf) <= max {
			buf = append(buf, chunk...)
		}
		switch {
		case err == nil:
			if len(buf) > max {
				return string(buf[:max]), true, nil
			}
			return strings.TrimRight(string(buf), "\r\n"), false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			if len(buf) > max {
				return string(buf[:max]), true, nil
			}
			return string(buf), false, nil
		default:
			return "", false, err
		}
	}
}

// errBroken is returned by send once a write to the connection failed.
var errBroken = errors.New("camsim: connection broken")

// send writes one reply line. A failed write closes the connection (the
// reader then sees it closed and the session winds down) and makes this
// and every later send return errBroken.
func (ss *session) send(id int, code string, internal bool, data clu.Object) error {
	b, err := MarshalReply(clu.Reply{Header: ss.header(id, code, internal), Data: data})
	if err != nil {
		// Only values built by this package are marshalled; this is a bug.
		ss.srv.log.Error("cannot encode reply", "err", err)
		b, _ = MarshalReply(clu.Reply{Header: clu.Header{CommandID: id, CommanderID: ss.commanderID,
			MessageCode: code, Sender: ss.srv.cfg.Name}})
	}
	return ss.writeRaw(append(b, '\n'))
}

// header is the header of this session's replies.
func (ss *session) header(id int, code string, internal bool) clu.Header {
	return clu.Header{
		CommandID:   id,
		CommanderID: ss.commanderID,
		MessageCode: code,
		Internal:    internal,
		Sender:      ss.srv.cfg.Name,
	}
}

// writeRaw writes whole reply lines (newlines included) at once.
func (ss *session) writeRaw(b []byte) error {
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if ss.broken {
		return errBroken
	}
	_ = ss.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := ss.conn.Write(b); err != nil {
		ss.broken = true
		ss.conn.Close()
		return errBroken
	}
	return nil
}

// fail answers a command that cannot run at all: ">" then "f".
func (ss *session) fail(id int, msg string) {
	ss.send(id, clu.CodeRunning, true, nil)
	ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: msg}})
}
