package device

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
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

func inFlight(c *Client) int { return c.InFlight() }
