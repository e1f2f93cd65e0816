package opscore

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
)

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
