package device

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/linesession"
	"github.com/sdss/fliswarm/test/camsim"
)

// Generous bounds for a noisy 2-core machine: a test only waits this long
// when it is failing.
const (
	waitLong  = 20 * time.Second
	pollEvery = 10 * time.Millisecond
)

// fakeCamera is an in-process camera actor speaking CLU's JSON protocol.
// Commands it receives are queued on cmds for the test to answer, unless
// auto is set, in which case it answers `>` then `:` by itself.
type fakeCamera struct {
	t    *testing.T
	name string
	addr string
	auto bool

	mu       sync.Mutex
	ln       net.Listener
	sessions []*fakeSession
	accepted int

	cmds chan fakeCmd
}

type fakeCmd struct {
	s   *fakeSession
	id  int
	cmd string
}

type fakeSession struct {
	conn net.Conn
	wmu  sync.Mutex
	name string
}

func newFakeCamera(t *testing.T, name string, auto bool) *fakeCamera {
	t.Helper()
	fc := &fakeCamera{t: t, name: name, auto: auto, cmds: make(chan fakeCmd, 100)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc.addr = ln.Addr().String()
	fc.serve(ln)
	t.Cleanup(fc.stop)
	return fc
}

func (fc *fakeCamera) serve(ln net.Listener) {
	fc.mu.Lock()
	fc.ln = ln
	fc.mu.Unlock()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s := &fakeSession{conn: conn, name: fc.name}
			fc.mu.Lock()
			fc.sessions = append(fc.sessions, s)
			fc.accepted++
			fc.mu.Unlock()
			go fc.read(s)
		}
	}()
}

func (fc *fakeCamera) read(s *fakeSession) {
	sc := bufio.NewScanner(s.conn)
	for sc.Scan() {
		id, cmd, err := clu.ParseCommand(sc.Text())
		if err != nil {
			continue
		}
		// Like a real camera, it answers the client's liveness pings
		// whatever the test does with the other commands.
		if fc.auto || cmd == "ping" {
			s.reply(id, clu.CodeRunning, nil)
			s.reply(id, clu.CodeDone, clu.Object{{Key: "text", Value: "ok " + cmd}})
			continue
		}
		fc.cmds <- fakeCmd{s: s, id: id, cmd: cmd}
	}
}

// stop closes the listener and every connection.
func (fc *fakeCamera) stop() {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.ln != nil {
		_ = fc.ln.Close()
		fc.ln = nil
	}
	for _, s := range fc.sessions {
		_ = s.conn.Close()
	}
	fc.sessions = nil
}

// restart listens again on the same address.
func (fc *fakeCamera) restart() {
	fc.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(waitLong)
	for {
		ln, err = net.Listen("tcp", fc.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		fc.t.Fatalf("relisten on %s: %v", fc.addr, err)
	}
	fc.serve(ln)
}

func (fc *fakeCamera) acceptedCount() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.accepted
}

// next returns the next command the camera received.
func (fc *fakeCamera) next() fakeCmd {
	fc.t.Helper()
	select {
	case c := <-fc.cmds:
		return c
	case <-time.After(waitLong):
		fc.t.Fatal("camera received no command")
		return fakeCmd{}
	}
}

func (s *fakeSession) reply(id int, code string, data clu.Object) {
	b, err := camsim.MarshalReply(clu.Reply{
		Header: clu.Header{CommandID: id, CommanderID: "0a1b-uuid", MessageCode: code, Internal: code == clu.CodeRunning, Sender: s.name},
		Data:   data,
	})
	if err != nil {
		panic(err)
	}
	s.raw(string(b) + "\n")
}

func (s *fakeSession) raw(text string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, _ = s.conn.Write([]byte(text))
}

// recorder collects what callbacks receive.
type recorder struct {
	mu      sync.Mutex
	replies []clu.Reply
}

func (r *recorder) add(rep clu.Reply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replies = append(r.replies, rep)
}

func (r *recorder) get() []clu.Reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.replies)
}

func codes(rs []clu.Reply) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Header.MessageCode)
	}
	return b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}

// startClient runs a client against addr until the test ends.
func startClient(t *testing.T, addr string, opts Options) *Client {
	t.Helper()
	if opts.InitialBackoff == 0 {
		opts.InitialBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	c := New("gfa1", addr, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(waitLong):
			t.Error("Run did not return after cancel")
		}
	})
	eventually(t, "connection", c.Connected)
	return c
}

type sendOut struct {
	res Result
	err error
}

// sendAsync runs Send in a goroutine.
func sendAsync(c *Client, ctx context.Context, cmd string, rec *recorder) <-chan sendOut {
	ch := make(chan sendOut, 1)
	go func() {
		var on func(clu.Reply)
		if rec != nil {
			on = rec.add
		}
		res, err := c.Send(ctx, cmd, on)
		ch <- sendOut{res, err}
	}()
	return ch
}

func wait(t *testing.T, ch <-chan sendOut) sendOut {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitLong):
		t.Fatal("Send did not return")
		return sendOut{}
	}
}

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

func TestReconnectAfterServerRestart(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	var mu sync.Mutex
	var states []bool
	c := startClient(t, cam.addr, Options{
		OnState: func(up bool, err error) {
			mu.Lock()
			states = append(states, up)
			mu.Unlock()
		},
	})
	if _, err := c.Send(context.Background(), "status", nil); err != nil {
		t.Fatal(err)
	}

	cam.stop()
	eventually(t, "disconnect", func() bool { return !c.Connected() })
	// Let a few dials fail against the closed port.
	eventually(t, "failed dials", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) >= 4
	})
	cam.restart()
	eventually(t, "reconnect", c.Connected)

	res, err := c.Send(context.Background(), "status", nil)
	if err != nil || !res.OK() || res.ID != 1 {
		t.Fatalf("Send after reconnect = %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if states[0] != true || states[1] != false || states[len(states)-1] != true {
		t.Errorf("OnState sequence %v, want true, false..., true", states)
	}
	for _, up := range states[1 : len(states)-1] {
		if up {
			t.Errorf("OnState sequence %v has an extra connection", states)
		}
	}
}

func TestKickSkipsBackoff(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	// A backoff far longer than the test's patience: only Kick can
	// reconnect in time.
	c := startClient(t, cam.addr, Options{InitialBackoff: time.Hour, MaxBackoff: time.Hour})
	cam.stop()
	eventually(t, "disconnect", func() bool { return !c.Connected() })
	cam.restart()
	c.Kick()
	eventually(t, "reconnect after Kick", c.Connected)
	if _, err := c.Send(context.Background(), "ping", nil); err != nil {
		t.Fatal(err)
	}
}

func TestDisconnectPauseResume(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{})

	ch := sendAsync(c, context.Background(), "expose 5", nil)
	cam.next()
	c.Disconnect()
	out := wait(t, ch)
	if !errors.Is(out.err, ErrDisconnected) || !strings.Contains(out.err.Error(), "disconnect requested") {
		t.Fatalf("Send after Disconnect = %v", out.err)
	}
	// Disconnect lets Run reconnect by itself.
	eventually(t, "reconnect after Disconnect", func() bool { return cam.acceptedCount() == 2 && c.Connected() })

	c.Pause()
	eventually(t, "paused", func() bool { return !c.Connected() })
	c.Kick() // does not override Pause
	time.Sleep(300 * time.Millisecond)
	if c.Connected() || cam.acceptedCount() != 2 {
		t.Fatalf("client reconnected while paused (accepted %d)", cam.acceptedCount())
	}
	if _, err := c.Send(context.Background(), "status", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send while paused = %v", err)
	}
	c.Resume()
	eventually(t, "reconnect after Resume", c.Connected)
}

func TestNotConnected(t *testing.T) {
	// Never run.
	c := New("gfa2", "127.0.0.1:1", Options{})
	_, err := c.Send(context.Background(), "status", nil)
	if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), "gfa2") {
		t.Fatalf("Send = %v, want ErrNotConnected naming gfa2", err)
	}

	// Running against a closed port: failed dials reach OnState.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	errs := make(chan error, 100)
	c = New("gfa2", addr, Options{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnState: func(up bool, err error) {
			if up {
				t.Error("connected to a closed port")
			}
			select {
			case errs <- err:
			default:
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil || !strings.Contains(err.Error(), "gfa2") {
				t.Errorf("OnState error %v does not name gfa2", err)
			}
		case <-time.After(waitLong):
			t.Fatal("no failed dial reported")
		}
	}
	if _, err := c.Send(context.Background(), "status", nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send = %v, want ErrNotConnected", err)
	}
	if err := c.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
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

func TestGarbageAndLongLinesAreRelayed(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var unsolicited recorder
	c := startClient(t, cam.addr, Options{MaxLineBytes: 1 << 20, OnUnsolicited: unsolicited.add})

	var rec recorder
	ch := sendAsync(c, context.Background(), "status", &rec)
	p := cam.next()
	s := p.s
	s.reply(p.id, clu.CodeRunning, nil)
	// Ignored, as the protocol says: blank lines, no header, empty header.
	s.raw("\n")
	s.raw("   \r\n")
	s.raw(`{"data": {"text": "no header"}}` + "\n")
	s.raw(`{"header": {}, "data": {"text": "empty header"}}` + "\n")
	s.raw(`{"header": null}` + "\n")
	// Undecodable, no command id: unsolicited warnings.
	s.raw("not json at all\n")
	s.raw("[1, 2, 3]\n")
	s.raw(`{"header": {"command_id": "one"}}` + "\n")
	s.raw(strings.Repeat("[", 100000) + "\n")
	// Undecodable with the command's id: a warning to the command.
	s.raw(fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i"}, "data": [1]}`, p.id) + "\n")
	// Longer than the limit, even a valid reply: skipped, reported to
	// its command.
	big := fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i", "sender": "gfa1"}, "data": {"text": "%s"}}`,
		p.id, strings.Repeat("x", 2<<20))
	s.raw(big + "\n")
	// Just under the limit: accepted.
	near := fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i", "sender": "gfa1"}, "data": {"text": "%s"}}`,
		p.id, strings.Repeat("y", (1<<20)-200))
	s.raw(near + "\n")
	s.reply(p.id, clu.CodeDone, nil)

	out := wait(t, ch)
	if out.err != nil || !out.res.OK() {
		t.Fatalf("Send = %+v, %v", out.res, out.err)
	}
	got := rec.get()
	if codes(got) != ">wwi:" {
		t.Fatalf("delivered codes %q, want >wwi:", codes(got))
	}
	for _, r := range got[1:3] {
		v, _ := r.Data.Get("text")
		if s, _ := v.(string); !strings.HasPrefix(s, UndecodableText) || r.Header.Sender != "gfa1" {
			t.Errorf("undecodable line relayed as %+v", r)
		}
	}
	if v, _ := got[2].Data.Get("text"); !strings.Contains(v.(string), "longer than the limit") {
		t.Errorf("long line reported as %q", v)
	}
	if v, _ := got[3].Data.Get("text"); len(v.(string)) != (1<<20)-200 {
		t.Errorf("near-limit line text has %d bytes", len(v.(string)))
	}
	if !c.Connected() {
		t.Error("garbage dropped the connection")
	}
	eventually(t, "4 undecodable lines unsolicited", func() bool { return len(unsolicited.get()) >= 4 })
	if n := len(unsolicited.get()); n != 4 {
		t.Errorf("%d unsolicited replies, want 4: %+v", n, unsolicited.get())
	}
	for _, r := range unsolicited.get() {
		v, _ := r.Data.Get("text")
		if s, _ := v.(string); r.Header.MessageCode != clu.CodeWarning || !strings.HasPrefix(s, UndecodableText) {
			t.Errorf("unsolicited %+v", r)
		}
	}

	// An undecodable line that looks like a command's end ends it, as a
	// failure, instead of leaving it to its timeout.
	ch = sendAsync(c, context.Background(), "temperature", &rec)
	p = cam.next()
	p.s.raw(fmt.Sprintf(`{"header": {"command_id": %d, "message_code": ":", "sender": "gfa1"}, "data": {"t": NaN-ish}}`, p.id) + "\n")
	out = wait(t, ch)
	if out.err != nil || out.res.Code != clu.CodeFailed {
		t.Fatalf("Send = %+v, %v; want a failure", out.res, out.err)
	}
}

func TestRunCancelEndsCommands(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := New("gfa1", cam.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "connection", c.Connected)

	ch := sendAsync(c, context.Background(), "expose 5", nil)
	cam.next()
	cancel()
	out := wait(t, ch)
	if !errors.Is(out.err, ErrDisconnected) || !errors.Is(out.err, context.Canceled) {
		t.Fatalf("Send after Run ended = %v", out.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return")
	}
	if c.Connected() {
		t.Error("still connected after Run returned")
	}
}

func inFlight(c *Client) int { return c.InFlight() }

// FuzzReadLoop feeds arbitrary bytes to a camera connection with commands
// 1-3 in flight: it must not panic, every reply a command receives must
// carry its id, and a command that ended normally ended with a terminal
// code.
func FuzzReadLoop(f *testing.F) {
	reply := func(id int, code string) string {
		b, _ := camsim.MarshalReply(clu.Reply{Header: clu.Header{CommandID: id, MessageCode: code, Sender: "gfa1"},
			Data: clu.Object{{Key: "text", Value: "x"}}})
		return string(b) + "\n"
	}
	f.Add([]byte(reply(1, ">") + reply(2, "i") + reply(1, ":") + reply(0, "i") + reply(3, "f")))
	f.Add([]byte("garbage\n{\"header\":{}}\n" + reply(2, ":")))
	f.Add([]byte(strings.Repeat("z", 600) + "\n" + reply(1, ":")))
	f.Add([]byte(`{"header": {"command_id": 1, "message_code": ":"}}`)) // no newline
	f.Add([]byte(`{"header": {"command_id": 2, "message_code": ":", "sender": "gfa1"}, "data": {"x": NaN}}` + "\n"))
	f.Add([]byte("\n\n\r\n" + reply(-1, ":") + reply(1<<40, "!")))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New("gfa1", "127.0.0.1:1", Options{MaxLineBytes: 256})
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		s := linesession.New(a, linesession.Config[clu.Reply]{
			Decode: c.decode, DecodeLong: c.decodeLong, Check: c.checkSender,
			MaxLineBytes: 256, OnUnsolicited: func(clu.Reply) {},
		})
		var recs [4]recorder
		var calls []*linesession.Call[clu.Reply]
		for id := 1; id <= 3; id++ {
			call, err := s.Start(context.Background(), formatCommand("cmd"), recs[id].add)
			if err != nil || call.ID != id {
				t.Fatalf("Start: %v, id %v", err, call)
			}
			calls = append(calls, call)
		}
		_ = s.Serve(bytes.NewReader(data))
		for i, call := range calls {
			final, err := call.Wait(context.Background(), 0)
			for _, r := range recs[i+1].get() {
				if r.Header.CommandID != call.ID {
					t.Fatalf("command %d received a reply for id %d", call.ID, r.Header.CommandID)
				}
			}
			if err == nil && (final.Header.CommandID != call.ID || !clu.IsTerminal(final.Header.MessageCode)) {
				t.Fatalf("command %d ended with %+v", call.ID, final)
			}
		}
	})
}
