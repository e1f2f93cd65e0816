package opscore

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
)

// wait is the generous bound on anything a test waits for.
const wait = 20 * time.Second

// testHandler implements a few commands for the tests.
type testHandler struct {
	srv       *Server
	release   chan struct{} // closes to let "block" finish
	cancelled chan int      // cmd ids of "wait" commands whose ctx ended
}

func newTestHandler() *testHandler {
	return &testHandler{release: make(chan struct{}), cancelled: make(chan int, 100)}
}

func (h *testHandler) Handle(ctx context.Context, cmd *Command) {
	switch cmd.Verb {
	case "ping":
		cmd.Finish(KW("text", "Pong."))
	case "whoami":
		cmd.Finish(KW("commander", cmd.Commander), KW("user", cmd.UserID))
	case "echo":
		cmd.Write(Info, KW("args", toAny(cmd.Args)...))
		cmd.Finish()
	case "panic":
		panic("boom")
	case "noreply":
	case "twice":
		cmd.Finish()
		cmd.Fail(KW("error", "second terminal"))
		cmd.Write(Info, KW("text", "late"))
	case "fatal":
		cmd.Write(Fatal, KW("text", "dead"))
		cmd.Finish()
	case "broadcast":
		h.srv.Broadcast(Info, KW("text", strings.Join(cmd.Args, " ")))
		cmd.Finish()
	case "sleep":
		ms, _ := strconv.Atoi(cmd.Args[0])
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			cmd.Finish(KW("slept", ms))
		case <-ctx.Done():
		}
	case "block":
		select {
		case <-h.release:
			cmd.Finish()
		case <-ctx.Done():
		}
	case "wait":
		<-ctx.Done()
		h.cancelled <- cmd.ID
	case "fill": // 16 MiB, then wait
		big := strings.Repeat("x", 4096)
		for range 4096 {
			cmd.Write(Info, KW("text", big))
		}
		<-ctx.Done()
		h.cancelled <- cmd.ID
	case "batch": // n numbered 1 KiB lines and the end, in one Batch
		n, _ := strconv.Atoi(cmd.Args[0])
		pad := strings.Repeat("x", 1024)
		cmd.Batch(func() {
			for i := range n {
				cmd.Write(Info, KW("n", i), KW("pad", pad))
			}
			cmd.Finish(KW("n", n))
		})
	case "flood":
		big := strings.Repeat("x", 4096)
		for ctx.Err() == nil {
			cmd.Write(Info, KW("text", big))
		}
		h.cancelled <- cmd.ID
	default:
		cmd.FailUnknown()
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func startServer(t *testing.T, h *testHandler, opts ...Option) *Server {
	t.Helper()
	s := NewServer("127.0.0.1:0", h, append([]Option{WithVersion("1.2.3")}, opts...)...)
	h.srv = s
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(wait):
			t.Error("Serve did not return after cancel")
		}
	})
	return s
}

// rawConn is a plain TCP user reading lines in the background.
type rawConn struct {
	t     *testing.T
	nc    net.Conn
	lines chan string
	eof   chan struct{}
}

// dialPlain dials a user that reads on the test's own goroutine.
func dialPlain(t *testing.T, s *Server) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc, bufio.NewReader(nc)
}

func dialRaw(t *testing.T, s *Server) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := &rawConn{t: t, nc: nc, lines: make(chan string, 100000), eof: make(chan struct{})}
	go func() {
		defer close(c.eof)
		sc := bufio.NewScanner(nc)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { nc.Close() })
	return c
}

// dialSilent connects a user that never reads.
func dialSilent(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

func (c *rawConn) send(line string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(line)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawConn) next() string {
	c.t.Helper()
	select {
	case l := <-c.lines:
		return l
	case <-time.After(wait):
		c.t.Fatal("timed out waiting for a line")
		return ""
	}
}

// expect reads len(want) lines and compares them exactly.
func (c *rawConn) expect(want ...string) {
	c.t.Helper()
	got := make([]string, len(want))
	for i := range want {
		got[i] = c.next()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		c.t.Fatalf("lines mismatch (-want +got):\n%s", diff)
	}
}

// greeted dials and reads the whole greeting: the user should get id
// wantID, and ids are every user connected then, this one included.
func greeted(t *testing.T, s *Server, wantID int, ids ...int) *rawConn {
	t.Helper()
	c := dialRaw(t, s)
	lines := []string{fmt.Sprintf("%d 0 i yourUserID=%d; num_users=%d", wantID, wantID, len(ids))}
	for _, id := range ids {
		lines = append(lines, fmt.Sprintf("0 0 i UserInfo=%d,127.0.0.1", id))
	}
	lines = append(lines, fmt.Sprintf(`%d 0 i version="1.2.3"`, wantID))
	c.expect(lines...)
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func userIDs(s *Server) []int {
	var ids []int
	for _, u := range s.Users() {
		ids = append(ids, u.ID)
	}
	return ids
}

func sorted(ss []string) []string {
	out := append([]string(nil), ss...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// logLine is one captured log line.
type logLine struct {
	msg string
	kv  map[string]string
}

type logCapture struct {
	mu    sync.Mutex
	lines []logLine
}

// captureLog returns a logger recording every line.
func captureLog() (logr.Logger, *logCapture) {
	lc := &logCapture{}
	return funcr.New(func(prefix, args string) {}, funcr.Options{}).WithSink(&captureSink{lc: lc}), lc
}

func (lc *logCapture) find(msg string) *logLine {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for i := range lc.lines {
		if lc.lines[i].msg == msg {
			l := lc.lines[i]
			return &l
		}
	}
	return nil
}

func (lc *logCapture) all(msg string) []logLine {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []logLine
	for _, l := range lc.lines {
		if l.msg == msg {
			out = append(out, l)
		}
	}
	return out
}

type captureSink struct {
	lc *logCapture
	kv []any
}

func (s *captureSink) Init(logr.RuntimeInfo) {}

func (s *captureSink) Enabled(level int) bool { return level == 0 }

func (s *captureSink) Info(_ int, msg string, kv ...any) {
	l := logLine{msg: msg, kv: map[string]string{}}
	all := append(append([]any{}, s.kv...), kv...)
	for i := 0; i+1 < len(all); i += 2 {
		l.kv[fmt.Sprint(all[i])] = fmt.Sprint(all[i+1])
	}
	s.lc.mu.Lock()
	s.lc.lines = append(s.lc.lines, l)
	s.lc.mu.Unlock()
}

func (s *captureSink) Error(err error, msg string, kv ...any) {
	s.Info(0, msg, append(kv, "error", err)...)
}

func (s *captureSink) WithValues(kv ...any) logr.LogSink {
	return &captureSink{lc: s.lc, kv: append(append([]any{}, s.kv...), kv...)}
}

func (s *captureSink) WithName(string) logr.LogSink { return s }
