package linesession

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// outcome is what a WhenDone callback got, with the replies onReply had
// seen by then.
type outcome struct {
	final   reply
	err     error
	replies int
}

// whenDone registers a WhenDone callback on c that reports on the
// returned channel (buffered, so a second call would show).
func whenDone(ctx context.Context, c *Call[reply], timeout time.Duration, seen func() int) chan outcome {
	ch := make(chan outcome, 2)
	c.WhenDone(ctx, timeout, func(final reply, err error) { ch <- outcome{final, err, seen()} })
	return ch
}

func waitOutcome(t *testing.T, ch chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("WhenDone's callback was not called")
		return outcome{}
	}
}

// TryStart sends without waiting; WhenDone reports each way a call ends,
// once, after the call's last onReply.
func TestTryStartAndWhenDone(t *testing.T) {
	var mu sync.Mutex
	var discarded []reply
	s, peer, w, _ := pair(t, Config[reply]{
		Decode: decode, Inline: true,
		OnDiscard: func(r reply) { mu.Lock(); discarded = append(discarded, r); mu.Unlock() },
	})
	ctx := context.Background()

	// The terminal reply: the callback comes after both replies.
	var got []reply
	c1, err := s.TryStart(ctx, format("one"), func(r reply) { got = append(got, r) })
	if err != nil || c1.ID != 1 {
		t.Fatalf("TryStart: %v", err)
	}
	done1 := whenDone(ctx, c1, time.Minute, func() int { return len(got) })
	if l, _ := peer.ReadString('\n'); l != "1 one\n" {
		t.Fatalf("peer read %q", l)
	}
	fmt.Fprint(w, "1 i a\n1 : end\n")
	if o := waitOutcome(t, done1); o.err != nil || o.final.text != "end" || o.replies != 2 {
		t.Fatalf("outcome %+v, want the end after 2 replies", o)
	}

	// The timeout: ErrTimeout; the id stays reserved and the late replies
	// are discarded.
	c2, _ := s.TryStart(ctx, format("two"), func(reply) { t.Error("a reply after the timeout was delivered") })
	peer.ReadString('\n')
	done2 := whenDone(ctx, c2, 10*time.Millisecond, func() int { return 0 })
	if o := waitOutcome(t, done2); !errors.Is(o.err, ErrTimeout) {
		t.Fatalf("outcome %+v, want ErrTimeout", o)
	}
	if n := s.InFlight(); n != 1 {
		t.Errorf("%d in flight after the timeout, want 1 (the id stays reserved)", n)
	}
	fmt.Fprintf(w, "%d i late\n%d : \n", c2.ID, c2.ID)

	// The context: its error.
	cctx, cancel := context.WithCancel(ctx)
	c3, _ := s.TryStart(cctx, format("three"), nil)
	peer.ReadString('\n')
	done3 := whenDone(cctx, c3, 0, func() int { return 0 })
	cancel()
	if o := waitOutcome(t, done3); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("outcome %+v, want context.Canceled", o)
	}

	// The connection's end: ErrClosed.
	c4, _ := s.TryStart(ctx, format("four"), nil)
	peer.ReadString('\n')
	done4 := whenDone(ctx, c4, 0, func() int { return 0 })
	w.Close()
	if o := waitOutcome(t, done4); !errors.Is(o.err, ErrClosed) {
		t.Fatalf("outcome %+v, want ErrClosed", o)
	}
	mu.Lock()
	if len(discarded) != 2 {
		t.Errorf("discarded %+v, want the timed-out call's two late replies", discarded)
	}
	mu.Unlock()
	for i, ch := range []chan outcome{done1, done2, done3, done4} {
		if len(ch) != 0 {
			t.Errorf("call %d: WhenDone's callback called twice", i+1)
		}
	}
}

// WhenDone on a call that has ended already calls back at once.
func TestWhenDoneAfterTheEnd(t *testing.T) {
	s, peer, w, _ := pair(t, Config[reply]{Decode: decode, Inline: true})
	ctx := context.Background()
	c, _ := s.TryStart(ctx, format("x"), nil)
	peer.ReadString('\n')
	fmt.Fprint(w, "1 : \n")
	<-c.Ended()
	called := false
	c.WhenDone(ctx, time.Minute, func(_ reply, err error) { called = err == nil })
	if !called {
		t.Fatal("WhenDone on an ended call did not call back at once")
	}
}

// While another command line is being written, TryStart neither waits nor
// sends.
func TestTryStartBusy(t *testing.T) {
	s, _, _, _ := pair(t, Config[reply]{Decode: decode, Inline: true})
	s.wmu.Lock() // a command line being written
	c, err := s.TryStart(context.Background(), format("x"), nil)
	s.wmu.Unlock()
	if !errors.Is(err, ErrBusy) || c != nil {
		t.Fatalf("TryStart while writing: %v, %v; want ErrBusy", c, err)
	}
	if n := s.InFlight(); n != 0 {
		t.Errorf("%d in flight after ErrBusy, want 0", n)
	}
}

// A line the socket cannot take at once is finished by a goroutine:
// TryStart does not wait for the peer to read, the next line waits its
// turn (TryStart says busy meanwhile), and both arrive whole, in order.
func TestTryStartLineLargerThanTheSocket(t *testing.T) {
	s, peer, _, _ := pair(t, Config[reply]{Decode: decode, Inline: true})
	ctx := context.Background()
	big := strings.Repeat("x", 32<<20) // far more than loopback buffers
	started := make(chan error, 1)
	go func() {
		_, err := s.TryStart(ctx, format(big), nil)
		started <- err
	}()
	select {
	case err := <-started:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("TryStart waited for the peer to read")
	}
	if _, err := s.TryStart(ctx, format("next"), nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("TryStart while the big line is written: %v, want ErrBusy", err)
	}
	next := make(chan error, 1)
	go func() { _, err := s.Start(ctx, format("next"), nil); next <- err }()
	l, err := peer.ReadString('\n')
	if err != nil || l != "1 "+big+"\n" {
		t.Fatalf("first line: %d bytes, %v", len(l), err)
	}
	if l, _ := peer.ReadString('\n'); l != "2 next\n" {
		t.Fatalf("second line %q", l)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
}

// failConn is a connection (not a socket) whose writes fail.
type failConn struct{ net.Conn }

func (failConn) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

// A write that fails ends the call with the error and drops the session.
func TestTryStartWriteFails(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	s := New[reply](failConn{a}, Config[reply]{Decode: decode, Inline: true})
	go s.Serve(nil)
	c, err := s.TryStart(context.Background(), format("x"), nil)
	if err != nil {
		t.Fatalf("TryStart: %v (the write is finished by a goroutine)", err)
	}
	var o outcome
	ch := whenDone(context.Background(), c, 0, func() int { return 0 })
	o = waitOutcome(t, ch)
	if !errors.Is(o.err, io.ErrClosedPipe) {
		t.Errorf("outcome %+v, want the write's error", o)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the session was not dropped")
	}
	if n := s.InFlight(); n != 0 {
		t.Errorf("%d in flight, want 0", n)
	}
}
