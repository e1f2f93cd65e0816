package opscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"

	"github.com/sdss/fliswarm/pkg/internal/loglimit"
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

func TestGreetingOneUser(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := dialRaw(t, s)
	c.expect(
		"1 0 i yourUserID=1; num_users=1",
		"0 0 i UserInfo=1,127.0.0.1",
		`1 0 i version="1.2.3"`,
	)
	users := s.Users()
	if len(users) != 1 || users[0].ID != 1 || users[0].Addr != c.nc.LocalAddr().String() {
		t.Errorf("Users() = %+v, want user 1 at %s", users, c.nc.LocalAddr())
	}
}

func TestGreetingTwoUsers(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := dialRaw(t, s)
	a.expect("1 0 i yourUserID=1; num_users=1", "0 0 i UserInfo=1,127.0.0.1", `1 0 i version="1.2.3"`)
	b := dialRaw(t, s)
	b.expect(
		"2 0 i yourUserID=2; num_users=2",
		"0 0 i UserInfo=1,127.0.0.1",
		"0 0 i UserInfo=2,127.0.0.1",
		`2 0 i version="1.2.3"`,
	)
	a.expect("0 0 i UserInfo=1,127.0.0.1", "0 0 i UserInfo=2,127.0.0.1")
}

func TestDefaultVersion(t *testing.T) {
	s := NewServer("127.0.0.1:0", newTestHandler())
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	c := dialRaw(t, s)
	c.expect("1 0 i yourUserID=1; num_users=1", "0 0 i UserInfo=1,127.0.0.1", `1 0 i version="unknown"`)
}

func TestUserIDReuse(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := greeted(t, s, 1, 1)
	greeted(t, s, 2, 1, 2)
	a.nc.Close()
	waitFor(t, "user 1 to go", func() bool { return cmp.Equal(userIDs(s), []int{2}) })
	greeted(t, s, 1, 1, 2)
	greeted(t, s, 3, 1, 2, 3)
	if got := userIDs(s); !cmp.Equal(got, []int{1, 2, 3}) {
		t.Errorf("users = %v, want [1 2 3]", got)
	}
}

func TestRepliesOnlyToSender(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := greeted(t, s, 1, 1)
	b := greeted(t, s, 2, 1, 2)
	a.expect("0 0 i UserInfo=1,127.0.0.1", "0 0 i UserInfo=2,127.0.0.1")

	a.send("APO.Jose 7 echo x \"y z\"\n")
	a.expect("1 7 > ", `1 7 i args=x,"y z"`, "1 7 : ")
	// Had any of a's replies reached b, they would come before b's own.
	b.send("3 ping\n")
	b.expect("2 3 > ", "2 3 : text=Pong.")
}

func TestBroadcast(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := greeted(t, s, 1, 1)
	b := greeted(t, s, 2, 1, 2)
	a.expect("0 0 i UserInfo=1,127.0.0.1", "0 0 i UserInfo=2,127.0.0.1")

	a.send("5 broadcast hi all\n")
	// The command's own replies are held until it ends (WithStartHold):
	// the broadcast it made goes first.
	a.expect(`0 0 i text="hi all"`, "1 5 > ", "1 5 : ")
	b.expect(`0 0 i text="hi all"`)

	s.Broadcast(Warning, KW("text", "bye"))
	a.expect("0 0 w text=bye")
	b.expect("0 0 w text=bye")
}

func TestRunBroadcast(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := greeted(t, s, 1, 1)
	b := greeted(t, s, 2, 1, 2)
	a.expect("0 0 i UserInfo=1,127.0.0.1", "0 0 i UserInfo=2,127.0.0.1")

	if err := s.RunBroadcast(context.Background(), `echo a "b c"`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*rawConn{a, b} {
		c.expect("0 0 > ", `0 0 i args=a,"b c"`, "0 0 : ")
	}
	if err := s.RunBroadcast(context.Background(), `echo "open`); err == nil {
		t.Error("RunBroadcast with a bad body succeeded")
	}
	if err := s.RunBroadcast(context.Background(), "   "); err == nil {
		t.Error("RunBroadcast with an empty body succeeded")
	}
}

func TestWriteUser(t *testing.T) {
	s := startServer(t, newTestHandler())
	a := greeted(t, s, 1, 1)
	if !s.WriteUser(1, 0, Warning, KW("text", "just you")) {
		t.Fatal("WriteUser(1) reported no such user")
	}
	a.expect(`1 0 w text="just you"`)
	if s.WriteUser(7, 0, Info) {
		t.Error("WriteUser(7) reported a user that does not exist")
	}
}

// TestExactlyOneTerminalReply covers handlers that panic, return without
// replying, or reply twice: each command gets one terminal reply, and the
// next command's replies follow directly.
func TestExactlyOneTerminalReply(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)

	c.send("4 panic\n")
	c.expect("1 4 > ", `1 4 f error=fliswarm,"Command \"panic\" failed: internal error: boom"`)
	c.send("5 noreply\n")
	c.expect("1 5 > ", `1 5 f error=fliswarm,"command ended without a reply"`)
	c.send("6 twice\n")
	c.expect("1 6 > ", "1 6 : ")
	c.send("7 fatal\n")
	c.expect("1 7 > ", "1 7 ! text=dead")
	c.send("8 nosuchverb\n")
	c.expect("1 8 > ", `1 8 f error=fliswarm,"Command \"nosuchverb\" not found."`)
	c.send("9 ping\n")
	c.expect("1 9 > ", "1 9 : text=Pong.")
}

func TestBadLines(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)

	c.send("\n   \n\r\n") // ignored
	c.send("12 talk \"unterminated\n")
	c.expect(`1 12 f error=fliswarm,"unterminated double quote"`)
	c.send("APO.Jose 13\n")
	c.expect(`1 13 f error=fliswarm,"no command given"`)
	c.send("14 \x00\x01\xfe\xff junk\n")
	c.expect(`1 14 f error=fliswarm,"command line is not valid UTF-8"`)
	c.send("\x00\x01\x02\x03\n")
	c.expect(`1 0 f error=fliswarm,"command line contains control characters"`)
	c.send("15 ping\n")
	c.expect("1 15 > ", "1 15 : text=Pong.")
}

func TestLongLine(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)

	// Far over the limit: discarded in pieces.
	c.send("9 echo " + strings.Repeat("x", 200<<10) + "\n")
	c.expect(`1 9 f error=fliswarm,"command line longer than 65536 bytes"`)
	// Exactly at the limit is fine; one more byte is not.
	body := "echo " + strings.Repeat("y", DefaultMaxLineLength-len("10 echo "))
	c.send("10 " + body + "\n")
	c.expect("1 10 > ", "1 10 i args="+strings.Repeat("y", DefaultMaxLineLength-len("10 echo ")), "1 10 : ")
	c.send("11 " + body + "y\r\n")
	c.expect(`1 11 f error=fliswarm,"command line longer than 65536 bytes"`)
	c.send("12 " + body + "yy\n")
	c.expect(`1 12 f error=fliswarm,"command line longer than 65536 bytes"`)
	c.send("13 ping\n")
	c.expect("1 13 > ", "1 13 : text=Pong.")
}

func TestSmallMaxLine(t *testing.T) {
	s := startServer(t, newTestHandler(), WithMaxLineLength(32))
	c := greeted(t, s, 1, 1)
	c.send("APO.Jose 77 " + strings.Repeat("z", 100) + "\n")
	c.expect(`1 77 f error=fliswarm,"command line longer than 32 bytes"`)
	c.send("78 ping\n")
	c.expect("1 78 > ", "1 78 : text=Pong.")
}

func TestCommandsRunConcurrently(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h)
	c := greeted(t, s, 1, 1)
	c.send("1 block\n")
	c.expect("1 1 > ")
	c.send("2 ping\n")
	c.expect("1 2 > ", "1 2 : text=Pong.")
	close(h.release)
	c.expect("1 1 : ")
}

func TestTooManyCommands(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h, WithMaxCommands(2))
	c := greeted(t, s, 1, 1)
	c.send("1 block\n2 block\n3 block\n")
	got := []string{c.next(), c.next(), c.next()}
	want := []string{"1 1 > ", "1 2 > ", `1 3 f error=fliswarm,"too many commands running (at most 2)"`}
	if !cmp.Equal(sorted(got), sorted(want)) {
		t.Fatalf("got %q, want %q in any order", got, want)
	}
	close(h.release)
	if got := sorted([]string{c.next(), c.next()}); !cmp.Equal(got, []string{"1 1 : ", "1 2 : "}) {
		t.Errorf("got %q", got)
	}
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

func TestDisconnectCancelsCommands(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h)
	c := greeted(t, s, 1, 1)
	c.send("31 wait\n32 wait\n")
	if got := sorted([]string{c.next(), c.next()}); !cmp.Equal(got, []string{"1 31 > ", "1 32 > "}) {
		t.Fatalf("got %q", got)
	}
	c.nc.Close()
	got := map[int]bool{}
	for range 2 {
		select {
		case id := <-h.cancelled:
			got[id] = true
		case <-time.After(wait):
			t.Fatal("command contexts were not cancelled on disconnect")
		}
	}
	if !got[31] || !got[32] {
		t.Errorf("cancelled %v, want 31 and 32", got)
	}
	waitFor(t, "the user to go", func() bool { return len(s.Users()) == 0 })
}

// TestHalfClose: a user that sends its commands and closes its sending
// side has its commands cancelled, but still gets their last replies
// before the connection closes.
func TestHalfClose(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)
	c.send("1 sleep 600000\n2 ping\n")
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		got = append(got, c.next())
	}
	want := []string{"1 1 > ", `1 1 f error=fliswarm,"command ended without a reply"`, "1 2 > ", "1 2 : text=Pong."}
	if !cmp.Equal(sorted(got), sorted(want)) {
		t.Errorf("got %q, want %q in any order", got, want)
	}
	select {
	case <-c.eof:
	case <-time.After(wait):
		t.Fatal("connection not closed after the commands ended")
	}
	waitFor(t, "the user to go", func() bool { return len(s.Users()) == 0 })
}

// TestSlowClientDropped: a user that never reads is dropped once its
// backlog overflows, its commands are cancelled, and other users and
// Broadcast are never held up meanwhile.
func TestSlowClientDropped(t *testing.T) {
	h := newTestHandler()
	log, logged := captureLog()
	s := startServer(t, h, WithMaxBacklog(1<<20), WithLogger(log))
	dialSilent(t, s) // never reads anything
	waitFor(t, "the silent user", func() bool { return cmp.Equal(userIDs(s), []int{1}) })

	var mu sync.Mutex
	received := 0
	fast, err := Dial(context.Background(), s.Addr().String(), WithUnsolicited(func(r Reply) {
		if r.Code == Debug {
			mu.Lock()
			received++
			mu.Unlock()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	if fast.UserID() != 2 {
		t.Fatalf("fast user id %d, want 2", fast.UserID())
	}

	big := strings.Repeat("b", 16<<10)
	sent := 0
	for batch := 0; !cmp.Equal(userIDs(s), []int{2}); batch++ {
		if batch > 2000 {
			t.Fatal("the silent user was never dropped")
		}
		// Broadcast never blocks on the silent user, and the fast user
		// gets every line meanwhile.
		for range 16 {
			s.Broadcast(Debug, KW("text", big))
			sent++
		}
		waitFor(t, "the fast user to get the broadcasts", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return received == sent
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := fast.Send(ctx, "ping", nil)
	if err != nil || r.Code != Done {
		t.Fatalf("ping after the drop: %+v, %v", r, err)
	}
	drop := logged.find("dropping user")
	if drop == nil || !strings.Contains(drop.kv["reason"], "backlog over the limit") ||
		drop.kv["user"] != "1" || drop.kv["maxBacklogBytes"] != "1048576" || drop.kv["backlogBytes"] == "" {
		t.Errorf("drop logged as %+v", drop)
	}
}

// TestFloodingCommandDropsItsUser: a command writing faster than its user
// reads gets its user dropped and its context cancelled.
func TestFloodingCommandDropsItsUser(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h, WithMaxBacklog(256<<10))
	slow := dialSilent(t, s)
	if _, err := slow.Write([]byte("41 flood\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-h.cancelled:
		if id != 41 {
			t.Errorf("cancelled command %d, want 41", id)
		}
	case <-time.After(wait):
		t.Fatal("the flooding command was never cancelled")
	}
	waitFor(t, "the user to go", func() bool { return len(s.Users()) == 0 })
	// The server still serves others.
	other := greeted(t, s, 1, 1)
	other.send("1 ping\n")
	other.expect("1 1 > ", "1 1 : text=Pong.")
}

func TestManyConcurrentClients(t *testing.T) {
	s := startServer(t, newTestHandler())
	const clients, perClient = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			c, err := Dial(ctx, s.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			var cwg sync.WaitGroup
			for j := range perClient {
				cwg.Add(1)
				go func() {
					defer cwg.Done()
					var codes []Code
					body := fmt.Sprintf("echo c%d n%d", i, j)
					if j%3 == 0 {
						body = fmt.Sprintf("sleep %d", (i+j)%20)
					}
					final, err := c.Send(ctx, body, func(r Reply) { codes = append(codes, r.Code) })
					if err != nil {
						errs <- fmt.Errorf("client %d command %d: %w", i, j, err)
						return
					}
					if final.Code != Done || final.UserID != c.UserID() {
						errs <- fmt.Errorf("client %d command %d: final %q", i, j, final.Line)
						return
					}
					want := []Code{Running, Info, Done}
					if j%3 == 0 {
						want = []Code{Running, Done}
					}
					if !cmp.Equal(codes, want) {
						errs <- fmt.Errorf("client %d command %d: codes %q, want %q", i, j, codes, want)
					}
				}()
			}
			cwg.Wait()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServeStopsOnCancel(t *testing.T) {
	h := newTestHandler()
	s := NewServer("127.0.0.1:0", h)
	h.srv = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	select {
	case <-s.Listening():
	case <-time.After(wait):
		t.Fatal("not listening")
	}
	c := dialRaw(t, s)
	c.next()
	c.next()
	c.next()
	c.send("1 wait\n")
	c.expect("1 1 > ")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(wait):
		t.Fatal("Serve did not return")
	}
	select {
	case <-h.cancelled:
	default:
		t.Error("Serve returned before the running command ended")
	}
	select {
	case <-c.eof:
	case <-time.After(wait):
		t.Error("connection still open after Serve returned")
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("a second Serve succeeded")
	}
	if _, err := net.Dial("tcp", s.Addr().String()); err == nil {
		t.Error("still accepting after Serve returned")
	}
}

func TestListenError(t *testing.T) {
	s := NewServer("127.0.0.1:-1", newTestHandler())
	err := s.ListenAndServe(context.Background())
	if err == nil {
		t.Fatal("ListenAndServe on a bad address succeeded")
	}
	var opErr *net.OpError
	var addrErr *net.AddrError
	if !errors.As(err, &opErr) && !errors.As(err, &addrErr) {
		t.Errorf("error %v does not wrap the net error", err)
	}
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

func (s *captureSink) Init(logr.RuntimeInfo)  {}
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

// TestStalledClientDropped: a user that reads nothing is dropped after the
// stall time although its backlog is far below the bound; the log says so,
// with the backlog size, and the server goes on serving.
func TestStalledClientDropped(t *testing.T) {
	h := newTestHandler()
	log, logged := captureLog()
	const stall = 300 * time.Millisecond
	s := startServer(t, h, WithStallTimeout(stall), WithLogger(log))
	silent := dialSilent(t, s)
	// Fill the socket buffers so that writes stop making progress, with
	// a backlog far below the bound.
	if _, err := silent.Write([]byte("41 fill\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-h.cancelled:
		if id != 41 {
			t.Errorf("cancelled command %d, want 41", id)
		}
	case <-time.After(wait):
		t.Fatal("the stalled user's command was never cancelled")
	}
	waitFor(t, "the user to go", func() bool { return len(s.Users()) == 0 })
	drop := logged.find("dropping user")
	if drop == nil || !strings.Contains(drop.kv["reason"], "no write progress") {
		t.Fatalf("drop logged as %+v", drop)
	}
	stalled, err := time.ParseDuration(drop.kv["stalledFor"])
	if err != nil || stalled < stall {
		t.Errorf("stalledFor %q: dropped before the stall time %v", drop.kv["stalledFor"], stall)
	}
	if n, err := strconv.Atoi(drop.kv["backlogBytes"]); err != nil || n <= 0 || n > DefaultMaxBacklog {
		t.Errorf("backlogBytes %q", drop.kv["backlogBytes"])
	}
	other := greeted(t, s, 1, 1)
	other.send("1 ping\n")
	other.expect("1 1 > ", "1 1 : text=Pong.")
}

// TestSlowReaderGetsEverything: a user that stops reading while far more
// than the old 1,024 lines pile up (and the stall time is long) is not
// dropped, and once it reads again it gets every line, in order.
func TestSlowReaderGetsEverything(t *testing.T) {
	h := &countHandler{done: make(chan struct{})}
	s := NewServer("127.0.0.1:0", h, WithVersion("1.2.3"))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const n = 200000
	if _, err := nc.Write([]byte("5 count " + strconv.Itoa(n) + "\n")); err != nil {
		t.Fatal(err)
	}
	// Read nothing until the command has written everything: the lines
	// wait in the socket buffers and the backlog.
	select {
	case <-h.done:
	case <-time.After(wait):
		t.Fatal("the command did not finish writing")
	}
	if len(s.Users()) != 1 {
		t.Fatal("the slow reader was dropped")
	}
	sc := bufio.NewScanner(nc)
	for range 3 { // greeting
		sc.Scan()
	}
	want := []string{"1 5 > "}
	for i := range n {
		want = append(want, fmt.Sprintf("1 5 i n=%d; text=\"a line of some length to fill the buffers\"", i))
	}
	want = append(want, "1 5 : ")
	for i, w := range want {
		if !sc.Scan() {
			t.Fatalf("line %d: %v", i, sc.Err())
		}
		if sc.Text() != w {
			t.Fatalf("line %d = %q, want %q", i, sc.Text(), w)
		}
	}
}

// countHandler answers "count N" with N numbered lines.
type countHandler struct {
	once sync.Once
	done chan struct{}
}

func (h *countHandler) Handle(ctx context.Context, cmd *Command) {
	n, _ := strconv.Atoi(cmd.Args[0])
	for i := range n {
		cmd.Write(Info, KW("n", i), KW("text", "a line of some length to fill the buffers"))
	}
	cmd.Finish()
	h.once.Do(func() { close(h.done) })
}

// TestBadLinesLogRateLimited: a client sending garbage gets a failure for
// every line, but the log grows by a few lines only, the next one saying
// how many were suppressed.
func TestBadLinesLogRateLimited(t *testing.T) {
	log, logged := captureLog()
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := startServer(t, newTestHandler(), WithLogger(log),
		func(s *Server) { s.badLog = loglimit.New(badLogEvery, badLogBurst, clock) })
	c := greeted(t, s, 1, 1)
	const n = 1000
	c.send(strings.Repeat("7 x \"open\n", n))
	for range n {
		if l := c.next(); l != `1 7 f error=fliswarm,"unterminated double quote"` {
			t.Fatalf("got %q", l)
		}
	}
	if got := len(logged.all("bad command line")); got != badLogBurst {
		t.Fatalf("%d lines logged for %d bad lines, want %d", got, n, badLogBurst)
	}
	mu.Lock()
	now = now.Add(badLogEvery)
	mu.Unlock()
	c.send("8 x \"open\n")
	c.expect(`1 8 f error=fliswarm,"unterminated double quote"`)
	lines := logged.all("bad command line")
	if len(lines) != badLogBurst+1 || lines[badLogBurst].kv["suppressed"] != strconv.Itoa(n-badLogBurst) {
		t.Fatalf("log lines %+v, want the last one with suppressed=%d", lines, n-badLogBurst)
	}
}

// TestActorName: every error the server and the command framework write
// has two values, the actor's name first; FailNode names the node.
func TestActorName(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, cmd *Command) {
		switch cmd.Verb {
		case "node":
			cmd.FailNode("gfa2", "Node %s is down.", "sdss-gfa2")
		case "err":
			cmd.Errorf("half %s", "wrong")
			cmd.Finish()
		case "name":
			cmd.Finish(KW("text", cmd.ActorName()))
		default:
			cmd.FailUnknown()
		}
	})
	s := NewServer("127.0.0.1:0", h, WithVersion("1.2.3"), WithActorName("myactor"), WithMaxLineLength(40))
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	c := greeted(t, s, 1, 1)
	for _, step := range []struct {
		line string
		want []string
	}{
		{"1 foo\n", []string{"1 1 > ", `1 1 f error=myactor,"Command \"foo\" not found."`}},
		{"2 node\n", []string{"1 2 > ", `1 2 f error=gfa2,"Node sdss-gfa2 is down."`}},
		{"3 err\n", []string{"1 3 > ", `1 3 e error=myactor,"half wrong"`, "1 3 : "}},
		{"4 name\n", []string{"1 4 > ", "1 4 : text=myactor"}},
		{"5 'x\n", []string{`1 5 f error=myactor,"unterminated single quote"`}},
		{"6 " + strings.Repeat("y", 50) + "\n", []string{`1 6 f error=myactor,"command line longer than 40 bytes"`}},
	} {
		c.send(step.line)
		c.expect(step.want...)
	}
}

func TestErrorKW(t *testing.T) {
	if got := ErrorKW("gfa1", "Node is not pinging back.").String(); got != `error=gfa1,"Node is not pinging back."` {
		t.Errorf("got %s", got)
	}
	if got := ErrorKW("fliswarm", "x").String(); got != `error=fliswarm,"x"` {
		t.Errorf("got %s", got)
	}
	var got []string
	cmd := NewCommand(Line{ID: 3, Verb: "v"}, 2, func(l string) { got = append(got, l) })
	cmd.FailUnknown()
	if want := []string{`2 3 f error=fliswarm,"Command \"v\" not found."`}; !cmp.Equal(got, want) {
		t.Errorf("NewCommand replies %q, want %q", got, want)
	}
}

// A command's end written by its sender (the socket full at first, so part
// of it waits for the writer) reaches the user whole and in order, after
// the lines queued before it.
func TestFinalBatchLargerThanTheSocket(t *testing.T) {
	// The socket takes at most 1000 bytes of each direct write, as a full
	// one would: the rest must reach the client through the writer, in
	// order, before anything queued after it.
	var partial atomic.Int64
	rawWriterFor = func(nc net.Conn) rawWriter {
		if w := newRawWriter(nc); w != nil {
			return shortWriter{w, &partial}
		}
		return nil
	}
	t.Cleanup(func() { rawWriterFor = newRawWriter })
	nc, rd := dialPlain(t, startServer(t, newTestHandler()))
	_ = nc.SetReadDeadline(time.Now().Add(30 * time.Second)) // a lost remainder fails, not hangs
	for _, n := range []int{1, 16000, 3} {
		if _, err := fmt.Fprintf(nc, "7 batch %d\n", n); err != nil {
			t.Fatal(err)
		}
		next := 0
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			r, err := ParseReply(strings.TrimRight(line, "\n"))
			if err != nil || r.CmdID != 7 || r.Code == Running {
				continue
			}
			if len(r.Keywords) == 0 || r.Keywords[0].Values[0] != strconv.Itoa(next) {
				t.Fatalf("batch %d: line %d is %.60s", n, next, line)
			}
			if r.Code == Done {
				if next != n {
					t.Fatalf("batch %d ended after %d lines", n, next)
				}
				break
			}
			next++
		}
	}
	if partial.Load() == 0 {
		t.Fatal("no direct write was partial: the test did not exercise the remainder")
	}
}

// shortWriter is a socket that takes at most 1000 bytes of each write.
type shortWriter struct {
	w       rawWriter
	partial *atomic.Int64
}

func (s shortWriter) tryWrite(b []byte) int {
	if len(b) > 1000 {
		s.partial.Add(1)
		b = b[:1000]
	}
	return s.w.tryWrite(b)
}

// Batch hands its lines over in one piece, marked final when the command
// ends in it; lines written meanwhile by others join it, in order.
func TestBatchSendsOnce(t *testing.T) {
	type sent struct {
		lines string
		final bool
	}
	var got []sent
	cmd := newCommand(Line{ID: 3, Verb: "x"}, 1, "a", func(b []byte, final bool) { got = append(got, sent{string(b), final}) }, logr.Discard())
	cmd.Write(Running)
	cmd.Batch(func() {
		cmd.Write(Info, KW("a", 1))
		cmd.Batch(func() { cmd.Write(Info, KW("b", 2)) })
		cmd.Finish()
	})
	cmd.Write(Info, KW("late", 1))
	want := []sent{{"1 3 > \n", false}, {"1 3 i a=1\n1 3 i b=2\n1 3 : \n", true}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(sent{})); diff != "" {
		t.Fatal(diff)
	}
}

// Without the start hold, the `>` goes out before any broadcast the
// command makes; with it, the `>` of a command still running comes when
// the hold ends.
func TestStartHold(t *testing.T) {
	s := startServer(t, newTestHandler(), WithStartHold(0))
	a := greeted(t, s, 1, 1)
	a.send("5 broadcast hi all\n")
	a.expect("1 5 > ", `0 0 i text="hi all"`, "1 5 : ")

	h := newTestHandler()
	s = startServer(t, h, WithStartHold(50*time.Millisecond))
	a = greeted(t, s, 1, 1)
	start := time.Now()
	a.send("6 block\n")
	a.expect("1 6 > ")
	if el := time.Since(start); el < 40*time.Millisecond || el > 5*time.Second {
		t.Fatalf("the `>` of a command still running came after %v, want about the 50 ms hold", el)
	}
	close(h.release)
	a.expect("1 6 : ")
}
