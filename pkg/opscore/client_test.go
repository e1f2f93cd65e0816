package opscore

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func dialClient(t *testing.T, s *Server, opts ...ClientOption) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := Dial(ctx, s.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientSend(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := dialClient(t, s)
	if c.UserID() != 1 || c.Version() != "1.2.3" {
		t.Fatalf("user %d version %q, want 1 and 1.2.3", c.UserID(), c.Version())
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	var lines []string
	final, err := c.Send(ctx, `echo a "b c"`, func(r Reply) { lines = append(lines, r.Line) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1 1 > ", `1 1 i args=a,"b c"`, "1 1 : "}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
	if final.Code != Done || final.CmdID != 1 || final.Line != "1 1 : " {
		t.Errorf("final = %+v", final)
	}

	final, err = c.Send(ctx, "nosuchverb", nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Code != Failed || final.CmdID != 2 {
		t.Errorf("final = %+v, want f for command 2", final)
	}
	if k, _ := final.Get("error"); !cmp.Equal(k, KW("error", "fliswarm", `Command "nosuchverb" not found.`)) {
		t.Errorf("error keyword = %v", k)
	}
}

func TestClientCommander(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := dialClient(t, s, WithCommander("fliswarm.send"))
	final, err := c.Send(context.Background(), "whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Keyword{KW("commander", "fliswarm.send"), KW("user", "1")}
	if diff := cmp.Diff(want, final.Keywords); diff != "" {
		t.Errorf("keywords (-want +got):\n%s", diff)
	}
}

func TestClientUnsolicited(t *testing.T) {
	s := startServer(t, newTestHandler())
	got := make(chan Reply, 100)
	c := dialClient(t, s, WithUnsolicited(func(r Reply) { got <- r }))
	// The greeting's lines came through first.
	for _, want := range []string{"1 0 i yourUserID=1; num_users=1", "0 0 i UserInfo=1,127.0.0.1", `1 0 i version="1.2.3"`} {
		if r := <-got; r.Line != want {
			t.Fatalf("unsolicited %q, want %q", r.Line, want)
		}
	}
	s.Broadcast(Warning, KW("text", "hello all"))
	select {
	case r := <-got:
		if r.Line != `0 0 w text="hello all"` {
			t.Errorf("unsolicited %q", r.Line)
		}
	case <-time.After(wait):
		t.Fatal("no broadcast")
	}
	_ = c
}

func TestClientSendCancelled(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h)
	c := dialClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	returned := false
	calledAfter := false
	started := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(ctx, "block", func(r Reply) {
			mu.Lock()
			defer mu.Unlock()
			if returned {
				calledAfter = true
			}
			if r.Code == Running {
				close(started)
			}
		})
		mu.Lock()
		returned = true
		mu.Unlock()
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Send error %v, want context.Canceled", err)
	}
	close(h.release) // the command now finishes; its reply is unsolicited
	final, err := c.Send(context.Background(), "ping", nil)
	if err != nil || final.Code != Done {
		t.Fatalf("ping: %+v, %v", final, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calledAfter {
		t.Error("onReply called after Send returned")
	}
}

func TestClientServerGone(t *testing.T) {
	h := newTestHandler()
	s := NewServer("127.0.0.1:0", h)
	h.srv = s
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	c := dialClient(t, s)

	errc := make(chan error, 1)
	go func() {
		// The server may still get the command's final `f` out before
		// closing; either that or an error ends the wait.
		final, err := c.Send(context.Background(), "wait", nil)
		if err == nil && final.Code != Failed {
			err = errors.New("unexpected final reply " + final.Line)
		} else if err == nil {
			err = errors.New("failed")
		}
		errc <- err
	}()
	waitFor(t, "the command to start", func() bool { return c.sess.InFlight() == 1 })
	stop()
	<-served
	select {
	case err := <-errc:
		if strings.HasPrefix(err.Error(), "unexpected") {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Send still waiting after the server went away")
	}
	<-c.Done()
	if c.Err() == nil {
		t.Error("Err() is nil after the connection closed")
	}
	if _, err := c.Send(context.Background(), "ping", nil); err == nil {
		t.Error("Send on a closed connection succeeded")
	}
}

func TestClientClose(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := dialClient(t, s)
	if c.Err() != nil {
		t.Fatalf("Err() = %v on an open client", c.Err())
	}
	c.Close()
	if _, err := c.Send(context.Background(), "ping", nil); !errors.Is(err, ErrClientClosed) {
		t.Errorf("Send after Close: %v, want ErrClientClosed", err)
	}
	if _, err := c.Send(context.Background(), "a\nb", nil); err == nil {
		t.Error("Send of a body with a newline succeeded")
	}
}

// fakeActor accepts one connection and writes greeting to it.
func fakeActor(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		t.Cleanup(func() { nc.Close() })
		nc.Write([]byte(greeting))
	}()
	return ln.Addr().String()
}

func TestDialBadGreeting(t *testing.T) {
	addr := fakeActor(t, "hello there\n")
	_, err := Dial(context.Background(), addr)
	if err == nil || !strings.Contains(err.Error(), "greeting") {
		t.Errorf("Dial error %v, want a greeting error", err)
	}
}

func TestDialNoGreeting(t *testing.T) {
	addr := fakeActor(t, "1 0 i yourUserID=1; num_users=1\n")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, addr)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial error %v, want a deadline error", err)
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), addr); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
}

func TestExchange(t *testing.T) {
	nc, rd := dialPlain(t, startServer(t, newTestHandler()))
	for id := 1; id <= 3; id++ {
		r, err := Exchange(nc, rd, id, "ping")
		if err != nil || r.CmdID != id || r.Code != Done {
			t.Fatalf("Exchange %d: %+v, %v", id, r, err)
		}
	}
	if r, err := Exchange(nc, rd, 4, "nosuchverb"); err != nil || r.Code != Failed {
		t.Fatalf("unknown verb: %+v, %v", r, err)
	}
	if _, err := Exchange(nc, rd, 5, "a\nb"); err == nil {
		t.Fatal("a body with a newline was sent")
	}
}

// ReadReplies hands over every line but the command's end, however long,
// and stops at the end of the command asked about only.
func TestReadReplies(t *testing.T) {
	long := strings.Repeat("x", 100)
	in := "1 0 i yourUserID=1\n1 2 : \n1 7 > \n1 7 i text=" + long + "\n1 7i : \n1 7 f text=no\n1 7 : \n"
	var got []string
	r, err := ReadReplies(bufio.NewReaderSize(strings.NewReader(in), 16), 7, func(l []byte) { got = append(got, string(l)) })
	if err != nil || r.Code != Failed || r.CmdID != 7 {
		t.Fatalf("end %+v, %v; want 1 7 f", r, err)
	}
	want := []string{"1 0 i yourUserID=1\n", "1 2 : \n", "1 7 > \n", "1 7 i text=" + long + "\n", "1 7i : \n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatal(diff)
	}
}
