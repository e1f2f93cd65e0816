package opscore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

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
