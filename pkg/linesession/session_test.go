package linesession

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reply is a test protocol's reply: "<id> <code> <text>".
type reply struct {
	id   int
	code string
	text string
}

func decode(line []byte) (reply, int, bool, error) {
	f := strings.SplitN(string(line), " ", 3)
	if len(f) < 2 {
		return reply{}, 0, false, errors.New("short line")
	}
	id, err := strconv.Atoi(f[0])
	if err != nil {
		return reply{}, 0, false, err
	}
	r := reply{id: id, code: f[1]}
	if len(f) == 3 {
		r.text = f[2]
	}
	return r, id, r.code == ":", nil
}

func format(cmd string) func([]byte, int) []byte {
	return func(dst []byte, id int) []byte { return fmt.Appendf(dst, "%d %s\n", id, cmd) }
}

// pair returns a session on one end of a loopback TCP connection and a
// reader/writer on the other (the peer).
func pair(t *testing.T, cfg Config[reply]) (*Session[reply], *bufio.Reader, net.Conn, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	s := New(a, cfg)
	served := make(chan error, 1)
	go func() { served <- s.Serve(nil) }()
	return s, bufio.NewReader(b), b, served
}

func TestIDsRoutingAndOutcomes(t *testing.T) {
	var unsolicited, discarded []reply
	s, peer, w, served := pair(t, Config[reply]{
		Decode:        decode,
		OnUnsolicited: func(r reply) { unsolicited = append(unsolicited, r) },
		OnDiscard:     func(r reply) { discarded = append(discarded, r) },
	})
	ctx := context.Background()
	var got1 []reply
	c1, err := s.Start(ctx, format("one"), func(r reply) { got1 = append(got1, r) })
	if err != nil || c1.ID != 1 {
		t.Fatalf("Start: %v, id %d", err, c1.ID)
	}
	if l, _ := peer.ReadString('\n'); l != "1 one\n" {
		t.Fatalf("peer read %q", l)
	}
	c2, _ := s.Start(ctx, format("two"), nil)
	peer.ReadString('\n')
	if c2.ID != 2 {
		t.Fatalf("second id %d", c2.ID)
	}
	// Replies interleave; a reply to no command is unsolicited; a blank
	// line and a trailing blank are kept apart.
	fmt.Fprint(w, "1 i a\n2 i b\n7 i stray\n   \n1 : \n")
	r, err := c1.Wait(ctx, time.Second)
	if err != nil || r.code != ":" || len(got1) != 2 || got1[0].text != "a" {
		t.Fatalf("c1: %+v %v, replies %+v", r, err, got1)
	}
	// c2 times out; its id stays reserved, its late replies are discarded.
	if _, err := c2.Wait(ctx, 20*time.Millisecond); !errors.Is(err, ErrTimeout) {
		t.Fatalf("c2: %v", err)
	}
	c3, _ := s.Start(ctx, format("three"), nil)
	peer.ReadString('\n')
	if c3.ID != 1 {
		t.Fatalf("id after 1 ended: %d (2 is still reserved)", c3.ID)
	}
	fmt.Fprint(w, "2 i late\n2 : \n")
	// The connection ends: c3 ends with ErrClosed.
	w.Close()
	if _, err := c3.Wait(ctx, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("c3 after close: %v", err)
	}
	<-served
	if len(unsolicited) != 1 || unsolicited[0].text != "stray" {
		t.Errorf("unsolicited %+v", unsolicited)
	}
	if len(discarded) != 2 || s.Discarded() != 2 {
		t.Errorf("discarded %+v (%d)", discarded, s.Discarded())
	}
	if _, err := s.Start(ctx, format("x"), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after close: %v", err)
	}
}

func TestSequentialIDsAndCheck(t *testing.T) {
	s, peer, w, served := pair(t, Config[reply]{
		Decode:        decode,
		SequentialIDs: true,
		Inline:        true,
		Check: func(r reply) error {
			if r.text == "intruder" {
				return errors.New("not ours")
			}
			return nil
		},
	})
	ctx := context.Background()
	for want := 1; want <= 3; want++ {
		c, err := s.Start(ctx, format("x"), nil)
		if err != nil || c.ID != want {
			t.Fatalf("Start %d: %v id %d", want, err, c.ID)
		}
		peer.ReadString('\n')
		fmt.Fprintf(w, "%d : \n", c.ID)
		if _, err := c.Wait(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprint(w, "0 i intruder\n")
	if err := <-served; err == nil || err.Error() != "not ours" {
		t.Errorf("Serve after a failed check: %v", err)
	}
}

func TestKeeperKickAndPause(t *testing.T) {
	k := NewKeeper(time.Hour, time.Hour)
	dials := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, func(context.Context) (net.Conn, error) {
			dials <- struct{}{}
			return nil, errors.New("refused")
		}, func(context.Context, net.Conn) bool { return true }, nil)
	}()
	<-dials // the first attempt is immediate; the next waits an hour...
	k.Kick()
	select { // ...unless kicked
	case <-dials:
	case <-time.After(5 * time.Second):
		t.Fatal("Kick did not make the keeper dial")
	}
	k.Pause()
	k.Kick()
	select {
	case <-dials:
		// A kick may have been taken by the wait before Pause: one more
		// dial at most.
		select {
		case <-dials:
			t.Fatal("dialled while paused")
		case <-time.After(100 * time.Millisecond):
		}
	case <-time.After(100 * time.Millisecond):
	}
	k.Resume()
	select {
	case <-dials:
	case <-time.After(5 * time.Second):
		t.Fatal("Resume did not make the keeper dial")
	}
	cancel()
	<-done
}
