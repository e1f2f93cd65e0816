package device

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
)

func TestSendIDAllocationAndReuse(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{})
	ctx := context.Background()

	// One at a time: 1, then 1 again once done.
	for range 2 {
		ch := sendAsync(c, ctx, "status", nil)
		got := cam.next()
		if got.id != 1 || got.cmd != "status" {
			t.Fatalf("camera got id %d %q, want 1 \"status\"", got.id, got.cmd)
		}
		got.s.reply(got.id, clu.CodeRunning, nil)
		got.s.reply(got.id, clu.CodeDone, nil)
		out := wait(t, ch)
		if out.err != nil || !out.res.OK() || out.res.ID != 1 {
			t.Fatalf("Send = %+v, %v; want id 1 done", out.res, out.err)
		}
	}

	// Concurrently: 1 and 2; after 1 ends, the next one reuses 1.
	ch1 := sendAsync(c, ctx, "expose 5", nil)
	a := cam.next()
	ch2 := sendAsync(c, ctx, "temperature", nil)
	b := cam.next()
	if a.id != 1 || b.id != 2 {
		t.Fatalf("concurrent ids %d, %d; want 1, 2", a.id, b.id)
	}
	a.s.reply(1, clu.CodeDone, nil)
	if out := wait(t, ch1); out.err != nil || out.res.ID != 1 {
		t.Fatalf("first Send = %+v, %v", out.res, out.err)
	}
	ch3 := sendAsync(c, ctx, "binning", nil)
	d := cam.next()
	if d.id != 1 {
		t.Fatalf("third command got id %d, want the freed 1", d.id)
	}
	b.s.reply(2, clu.CodeFailed, clu.Object{{Key: "error", Value: "no"}})
	d.s.reply(1, clu.CodeDone, nil)
	if out := wait(t, ch2); out.err != nil || out.res.Code != clu.CodeFailed || out.res.OK() {
		t.Fatalf("second Send = %+v, %v; want failed without error", out.res, out.err)
	}
	if out := wait(t, ch3); out.err != nil || !out.res.OK() {
		t.Fatalf("third Send = %+v, %v", out.res, out.err)
	}
}

func TestInterleavedRepliesAreRouted(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var unsolicited recorder
	c := startClient(t, cam.addr, Options{OnUnsolicited: unsolicited.add})
	ctx := context.Background()

	var recA, recB recorder
	chA := sendAsync(c, ctx, "expose 5", &recA)
	a := cam.next()
	chB := sendAsync(c, ctx, "status", &recB)
	b := cam.next()

	s := a.s
	s.reply(a.id, clu.CodeRunning, nil)
	s.reply(b.id, clu.CodeRunning, nil)
	s.reply(a.id, clu.CodeInfo, clu.Object{{Key: "exposure_state", Value: []any{"gfa1n", "integrating"}}})
	s.reply(b.id, clu.CodeInfo, clu.Object{{Key: "status", Value: []any{"gfa1n", "ML"}}})
	s.reply(b.id, clu.CodeDone, nil)
	if out := wait(t, chB); out.err != nil || !out.res.OK() {
		t.Fatalf("short command: %+v, %v", out.res, out.err)
	}
	s.reply(a.id, clu.CodeWarning, clu.Object{{Key: "text", Value: "slow"}})
	s.reply(a.id, clu.CodeInfo, clu.Object{{Key: "filename", Value: clu.Object{{Key: "camera", Value: "gfa1n"}, {Key: "filename", Value: "/data/x.fits"}}}})
	s.reply(a.id, clu.CodeDone, nil)
	out := wait(t, chA)
	if out.err != nil || !out.res.OK() || out.res.ID != a.id {
		t.Fatalf("long command: %+v, %v", out.res, out.err)
	}

	if got := codes(recA.get()); got != ">iwi:" {
		t.Errorf("command A got codes %q, want >iwi:", got)
	}
	if got := codes(recB.get()); got != ">i:" {
		t.Errorf("command B got codes %q, want >i:", got)
	}
	for _, r := range recA.get() {
		if r.Header.CommandID != a.id {
			t.Errorf("command A got a reply for id %d", r.Header.CommandID)
		}
	}
	if _, ok := recA.get()[3].Data.Get("filename"); !ok {
		t.Errorf("command A's fourth reply lacks filename: %+v", recA.get()[3])
	}
	if n := len(unsolicited.get()); n != 0 {
		t.Errorf("%d replies went to OnUnsolicited", n)
	}
}

func TestUnsolicitedReplies(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var unsolicited recorder
	c := startClient(t, cam.addr, Options{OnUnsolicited: unsolicited.add})

	// Find the server side of the connection through a command.
	ch := sendAsync(c, context.Background(), "status", nil)
	p := cam.next()
	p.s.reply(0, clu.CodeInfo, clu.Object{{Key: "text", Value: "camera connected"}})
	p.s.reply(7, clu.CodeWarning, clu.Object{{Key: "text", Value: "stray"}})
	p.s.reply(p.id, clu.CodeDone, nil)
	wait(t, ch)
	// A reply to a finished command is unsolicited too.
	p.s.reply(p.id, clu.CodeInfo, clu.Object{{Key: "text", Value: "late"}})

	eventually(t, "three unsolicited replies", func() bool { return len(unsolicited.get()) == 3 })
	got := unsolicited.get()
	for i, want := range []int{0, 7, p.id} {
		if got[i].Header.CommandID != want {
			t.Errorf("unsolicited[%d] has id %d, want %d", i, got[i].Header.CommandID, want)
		}
	}
}

func TestDisconnectEndsEveryCommandInFlight(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var mu sync.Mutex
	var states []bool
	c := startClient(t, cam.addr, Options{
		InitialBackoff: time.Hour, MaxBackoff: time.Hour, // no reconnect during the test
		OnState: func(up bool, err error) {
			mu.Lock()
			states = append(states, up)
			mu.Unlock()
		},
	})
	ctx := context.Background()
	var recA recorder
	chA := sendAsync(c, ctx, "expose 5", &recA)
	a := cam.next()
	chB := sendAsync(c, ctx, "status", nil)
	cam.next()
	a.s.reply(a.id, clu.CodeRunning, nil)
	eventually(t, "first reply delivered", func() bool { return len(recA.get()) == 1 })

	cam.stop()

	for _, tc := range []struct {
		ch  <-chan sendOut
		cmd string
	}{{chA, "expose 5"}, {chB, "status"}} {
		out := wait(t, tc.ch)
		if !errors.Is(out.err, ErrDisconnected) {
			t.Fatalf("Send(%q) error = %v, want ErrDisconnected", tc.cmd, out.err)
		}
		want := fmt.Sprintf("camera gfa1 disconnected while running %q", tc.cmd)
		if !strings.Contains(out.err.Error(), want) {
			t.Errorf("error %q does not contain %q", out.err, want)
		}
	}
	eventually(t, "disconnected state", func() bool { return !c.Connected() })
	_, err := c.Send(ctx, "status", nil)
	if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), "gfa1") {
		t.Errorf("Send after drop = %v, want ErrNotConnected naming gfa1", err)
	}
	// Connected() turns false as soon as the session fails; OnState(false)
	// is told when the session's loop has ended, a moment later.
	eventually(t, "OnState(false)", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(states, []bool{true, false}) {
		t.Errorf("OnState calls %v, want [true false]", states)
	}
}

func TestCommandTimeoutKeepsIDUntilCameraFinishes(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var unsolicited recorder
	c := startClient(t, cam.addr, Options{CommandTimeout: 100 * time.Millisecond, OnUnsolicited: unsolicited.add})
	ctx := context.Background()

	start := time.Now()
	ch := sendAsync(c, ctx, "expose 5", nil)
	a := cam.next()
	out := wait(t, ch)
	if !errors.Is(out.err, ErrTimeout) || !strings.Contains(out.err.Error(), "gfa1") || !strings.Contains(out.err.Error(), "expose 5") {
		t.Fatalf("Send error = %v, want ErrTimeout naming camera and command", out.err)
	}
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("timed out after %s, before the 100ms timeout", el)
	}

	// The camera may still be running id 1: the next command gets 2.
	ch2 := sendAsync(c, ctx, "status", nil)
	b := cam.next()
	if b.id != 2 {
		t.Fatalf("command after a timeout got id %d, want 2 (1 still reserved)", b.id)
	}
	b.s.reply(b.id, clu.CodeDone, nil)
	wait(t, ch2)

	// Late replies to id 1 belong to nobody: discarded and counted, never
	// unsolicited; its terminal frees the id.
	a.s.reply(a.id, clu.CodeInfo, clu.Object{{Key: "text", Value: "late"}})
	a.s.reply(a.id, clu.CodeDone, nil)
	eventually(t, "late replies discarded", func() bool { return c.Discarded() == 2 })
	if n := len(unsolicited.get()); n != 0 {
		t.Errorf("%d late replies reached OnUnsolicited", n)
	}

	ch3 := sendAsync(c, ctx, "status", nil)
	d := cam.next()
	if d.id != 1 {
		t.Fatalf("command after the late terminal got id %d, want 1", d.id)
	}
	d.s.reply(d.id, clu.CodeDone, nil)
	if out := wait(t, ch3); out.err != nil {
		t.Fatal(out.err)
	}

	// SendWithTimeout with no timeout waits past the client's default.
	ch4 := make(chan sendOut, 1)
	go func() {
		res, err := c.SendWithTimeout(ctx, "expose 100", -1, nil)
		ch4 <- sendOut{res, err}
	}()
	e := cam.next()
	time.Sleep(300 * time.Millisecond) // longer than CommandTimeout
	e.s.reply(e.id, clu.CodeDone, nil)
	if out := wait(t, ch4); out.err != nil || !out.res.OK() {
		t.Fatalf("SendWithTimeout(-1) = %+v, %v", out.res, out.err)
	}
}

func TestContextCancellation(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{})

	ctx, cancel := context.WithCancel(context.Background())
	ch := sendAsync(c, ctx, "expose 5", nil)
	a := cam.next()
	cancel()
	out := wait(t, ch)
	if !errors.Is(out.err, context.Canceled) || !strings.Contains(out.err.Error(), "gfa1") {
		t.Fatalf("Send error = %v, want context.Canceled naming gfa1", out.err)
	}

	// Already-cancelled context: nothing is sent.
	if _, err := c.Send(ctx, "status", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with done ctx = %v", err)
	}

	// The camera ends the abandoned command; its id is free again.
	a.s.reply(a.id, clu.CodeFailed, nil)
	eventually(t, "id 1 freed", func() bool { return inFlight(c) == 0 })
	ch2 := sendAsync(c, context.Background(), "status", nil)
	b := cam.next()
	if b.id != 1 {
		t.Fatalf("next command got id %d, want 1", b.id)
	}
	b.s.reply(b.id, clu.CodeDone, nil)
	wait(t, ch2)
}

func TestSlowOnReplyDoesNotBlockOtherCommands(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{})
	ctx := context.Background()

	release := make(chan struct{})
	var slowGot recorder
	slowDone := make(chan sendOut, 1)
	deliveredAtReturn := make(chan int, 1)
	go func() {
		res, err := c.Send(ctx, "expose 5", func(r clu.Reply) {
			<-release
			slowGot.add(r)
		})
		deliveredAtReturn <- len(slowGot.get())
		slowDone <- sendOut{res, err}
	}()
	a := cam.next()
	for range 10 {
		a.s.reply(a.id, clu.CodeInfo, clu.Object{{Key: "text", Value: "x"}})
	}
	a.s.reply(a.id, clu.CodeDone, nil)

	// Another command completes while the first one's callback is stuck.
	ch := sendAsync(c, ctx, "status", nil)
	b := cam.next()
	b.s.reply(b.id, clu.CodeDone, nil)
	if out := wait(t, ch); out.err != nil {
		t.Fatal(out.err)
	}
	select {
	case <-slowDone:
		t.Fatal("Send returned before its onReply calls finished")
	default:
	}
	close(release)
	out := wait(t, slowDone)
	if out.err != nil || !out.res.OK() {
		t.Fatalf("slow Send = %+v, %v", out.res, out.err)
	}
	if n := <-deliveredAtReturn; n != 11 {
		t.Errorf("Send returned after %d of 11 onReply calls", n)
	}
	if got := codes(slowGot.get()); got != "iiiiiiiiii:" {
		t.Errorf("slow command got %q", got)
	}
}

func TestSendRejectsBadCommands(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	c := startClient(t, cam.addr, Options{})
	for _, cmd := range []string{"", "   ", "status\nexpose 5", "a\rb"} {
		if _, err := c.Send(context.Background(), cmd, nil); err == nil {
			t.Errorf("Send(%q) succeeded", cmd)
		}
	}
	if _, err := c.Send(context.Background(), "  status  ", nil); err != nil {
		t.Errorf("Send with surrounding spaces: %v", err)
	}
}
