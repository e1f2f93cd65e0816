package opscore

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// starterHandler is testHandler with a Starter: "async" is started and
// left to the test to end, "asyncping" ends within TryStart, "asyncwait"
// ends when its context does, "startpanic" panics in TryStart; every other
// verb is declined and goes to Handle.
type starterHandler struct {
	*testHandler
	started chan startedCmd

	mu      sync.Mutex
	handled []string // verbs Handle ran
}

type startedCmd struct {
	ctx context.Context
	cmd *Command
}

func (h *starterHandler) TryStart(ctx context.Context, cmd *Command) bool {
	switch cmd.Verb {
	case "async":
		h.started <- startedCmd{ctx, cmd}
		return true
	case "asyncping":
		cmd.Finish(KW("text", "Pong."))
		return true
	case "asyncwait":
		context.AfterFunc(ctx, func() { cmd.Failf("gone") })
		h.started <- startedCmd{ctx, cmd}
		return true
	case "startpanic":
		panic("boom at start")
	case "misdecline": // breaks the contract: ends the command, then declines
		cmd.Finish()
		return false
	}
	return false
}

func (h *starterHandler) Handle(ctx context.Context, cmd *Command) {
	h.mu.Lock()
	h.handled = append(h.handled, cmd.Verb)
	h.mu.Unlock()
	h.testHandler.Handle(ctx, cmd)
}

func (h *starterHandler) handledVerbs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.handled)
}

func startStarterServer(t *testing.T, opts ...Option) (*Server, *starterHandler) {
	t.Helper()
	h := &starterHandler{testHandler: newTestHandler(), started: make(chan startedCmd, 10)}
	s := NewServer("127.0.0.1:0", h, append([]Option{WithVersion("1.2.3"), WithStartHold(0)}, opts...)...)
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
	return s, h
}

func (h *starterHandler) next(t *testing.T) startedCmd {
	t.Helper()
	select {
	case sc := <-h.started:
		return sc
	case <-time.After(wait):
		t.Fatal("no command started")
		return startedCmd{}
	}
}

// A started command runs without Handle, is answered from another
// goroutine, holds its slot until its end, and its context is not
// cancelled by its end.
func TestStartedCommandEndsFromElsewhere(t *testing.T) {
	s, h := startStarterServer(t, WithMaxCommands(1))
	c := greeted(t, s, 1, 1)
	c.send("1 async\n")
	c.expect("1 1 > ")
	sc := h.next(t)
	sc.cmd.Write(Info, KW("text", "from elsewhere"))
	c.expect(`1 1 i text="from elsewhere"`)
	c.send("2 ping\n") // the slot is taken
	c.expect(`1 2 f error=fliswarm,"too many commands running (at most 1)"`)
	go sc.cmd.Finish() // any goroutine may end it
	c.expect("1 1 : ")
	if sc.ctx.Err() != nil {
		t.Errorf("the started command's context ended with the command: %v", sc.ctx.Err())
	}
	c.send("3 asyncping\n") // the slot is free again; ends inside TryStart
	c.expect("1 3 > ", `1 3 : text=Pong.`)
	c.send("4 asyncping\n")
	c.expect("1 4 > ", `1 4 : text=Pong.`)
	if got := h.handledVerbs(); len(got) != 0 {
		t.Errorf("Handle ran %q, want nothing (the ping was refused)", got)
	}
}

// A declined command runs through Handle with one `>`.
func TestDeclinedCommandRunsThroughHandle(t *testing.T) {
	s, h := startStarterServer(t)
	c := greeted(t, s, 1, 1)
	c.send("1 ping\n")
	c.send("2 echo a b\n")
	got := []string{c.next(), c.next(), c.next(), c.next(), c.next()}
	// The two commands run concurrently: compare each one's lines.
	var one, two []string
	for _, l := range got {
		switch {
		case len(l) > 4 && l[:4] == "1 1 ":
			one = append(one, l)
		case len(l) > 4 && l[:4] == "1 2 ":
			two = append(two, l)
		}
	}
	if !slices.Equal(one, []string{"1 1 > ", `1 1 : text=Pong.`}) ||
		!slices.Equal(two, []string{"1 2 > ", "1 2 i args=a,b", "1 2 : "}) {
		t.Errorf("lines %q", got)
	}
	if v := h.handledVerbs(); !slices.Equal(sorted(v), []string{"echo", "ping"}) {
		t.Errorf("Handle ran %q, want echo and ping", v)
	}
}

// A panic in TryStart fails the command, frees its slot and leaves the
// user connected.
func TestStartPanicFailsTheCommand(t *testing.T) {
	s, h := startStarterServer(t, WithMaxCommands(1))
	c := greeted(t, s, 1, 1)
	c.send("1 startpanic\n")
	c.expect("1 1 > ", `1 1 f error=fliswarm,"Command \"startpanic\" failed: internal error: boom at start"`)
	c.send("2 ping\n")
	c.expect("1 2 > ", `1 2 : text=Pong.`)
	// A handler that ends a command and still declines it: the command
	// is not run again, and its slot is freed once.
	c.send("3 misdecline\n")
	c.expect("1 3 > ", "1 3 : ")
	c.send("4 ping\n")
	c.expect("1 4 > ", `1 4 : text=Pong.`)
	if v := h.handledVerbs(); !slices.Equal(v, []string{"ping", "ping"}) {
		t.Errorf("Handle ran %q, want only the pings", v)
	}
}

// A started command's context is its user's connection: it ends when the
// user goes, and the server lets the user go once the handler has ended
// the command.
func TestStartedCommandContextEndsWithTheUser(t *testing.T) {
	s, h := startStarterServer(t)
	c := greeted(t, s, 1, 1)
	c.send("1 asyncwait\n")
	c.expect("1 1 > ")
	sc := h.next(t)
	if err := c.nc.(*net.TCPConn).CloseWrite(); err != nil { // the user only stops sending
		t.Fatal(err)
	}
	select {
	case <-sc.ctx.Done():
	case <-time.After(wait):
		t.Fatal("the started command's context did not end with its user")
	}
	// The command's end, written when the context ended, still reaches
	// the user (it had only closed its sending side), and then the user
	// is let go.
	c.expect(`1 1 f error=fliswarm,"gone"`)
	waitFor(t, "the user let go", func() bool { return len(s.Users()) == 0 })
}

// The server stops with a started command under way once the handler
// ends it (startStarterServer's cleanup waits for Serve).
func TestServerStopsWithAStartedCommand(t *testing.T) {
	s, h := startStarterServer(t)
	c := greeted(t, s, 1, 1)
	c.send("1 asyncwait\n")
	c.expect("1 1 > ")
	h.next(t)
}
