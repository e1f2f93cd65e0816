package actor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

func TestParseHubReply(t *testing.T) {
	for _, tc := range []struct {
		line    string
		want    HubReply
		wantErr bool
	}{
		{line: "fliswarm.fliswarm 3 jaeger : ", want: HubReply{Commander: "fliswarm.fliswarm", MID: 3, Actor: "jaeger", Code: ':'}},
		{line: "fliswarm.fliswarm 3 jaeger :", want: HubReply{Commander: "fliswarm.fliswarm", MID: 3, Actor: "jaeger", Code: ':'}},
		{line: `.jaeger 0 jaeger i text="hello world"; x=1,2`, want: HubReply{
			Commander: ".jaeger", Actor: "jaeger", Code: 'i',
			Keywords: []opscore.Keyword{opscore.KW("text", "hello world"), opscore.KW("x", "1", "2")},
		}},
		{line: `a.b 7 hub f text="unterminated`, want: HubReply{Commander: "a.b", MID: 7, Actor: "hub", Code: 'f'}},
		{line: "a.b 7 jaeger\r\n", wantErr: true},
		{line: "a.b x jaeger :", wantErr: true},
		{line: "a.b -1 jaeger :", wantErr: true},
		{line: "a.b 1 jaeger Q", wantErr: true},
		{line: "a.b 1 jaeger ::", wantErr: true},
		{line: "   ", wantErr: true},
	} {
		got, err := ParseHubReply(tc.line)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want error %v", tc.line, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		tc.want.Line = strings.TrimRight(tc.line, "\r\n")
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.line, diff)
		}
	}
}

func FuzzParseHubReply(f *testing.F) {
	for _, s := range []string{
		"fliswarm.fliswarm 3 jaeger : ",
		`.jaeger 0 jaeger i text="hello world"; x=1,2`,
		"a.b 7 hub f text=\"x",
		"a.b 99999999999999999999 hub :",
		"\x00 1 a :",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseHubReply(line)
		if err != nil {
			return
		}
		if r.MID < 0 || !r.Code.Valid() || r.Commander == "" || r.Actor == "" {
			t.Fatalf("accepted %q as %+v", line, r)
		}
		// The header survives a round trip.
		again, err := ParseHubReply(fmt.Sprintf("%s %d %s %c ", r.Commander, r.MID, r.Actor, r.Code))
		if err != nil || again.Commander != r.Commander || again.MID != r.MID || again.Actor != r.Actor || again.Code != r.Code {
			t.Fatalf("header of %q does not round-trip: %+v, %v", line, again, err)
		}
	})
}

// fakeHub is a tron hub that answers every command line: commands holding
// "fail" fail, commands holding "hold" are answered only after a command
// holding "release" arrives. It sends an unrelated broadcast first.
type fakeHub struct {
	t  *testing.T
	ln net.Listener

	mu    sync.Mutex
	lines []string
	conns []net.Conn
}

func startFakeHub(t *testing.T, addr string) *fakeHub {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHub{t: t, ln: ln}
	go h.accept()
	t.Cleanup(h.close)
	return h
}

func (h *fakeHub) addr() string { return h.ln.Addr().String() }

func (h *fakeHub) close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
}

func (h *fakeHub) received() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lines)
}

func (h *fakeHub) accept() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns = append(h.conns, c)
		h.mu.Unlock()
		go h.serve(c)
	}
}

func (h *fakeHub) serve(c net.Conn) {
	defer c.Close()
	var wmu sync.Mutex
	write := func(s string) {
		wmu.Lock()
		defer wmu.Unlock()
		fmt.Fprintf(c, "%s\n", s)
	}
	var held []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		h.mu.Lock()
		h.lines = append(h.lines, line)
		h.mu.Unlock()
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		cmdr, mid, target, body := f[0], f[1], f[2], strings.Join(f[3:], " ")
		write(fmt.Sprintf(".%s 0 %s i unrelated=1", target, target))
		write(fmt.Sprintf("%s %s %s > ", cmdr, mid, target))
		write(fmt.Sprintf("other.user %s %s : ", mid, target)) // same mid, another commander
		final := fmt.Sprintf("%s %s %s : text=done", cmdr, mid, target)
		if strings.Contains(body, "fail") {
			final = fmt.Sprintf(`%s %s %s f error="it failed"`, cmdr, mid, target)
		}
		switch {
		case strings.Contains(body, "hold"):
			held = append(held, final)
			continue
		case strings.Contains(body, "release"):
			write(final)
			for _, l := range held {
				write(l)
			}
			held = nil
		default:
			write(final)
		}
	}
}

func startTron(t *testing.T, addr string) (*TronClient, context.CancelFunc) {
	t.Helper()
	tc := NewTronClient(addr, "fliswarm.fliswarm", logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = tc.Run(ctx); close(done) }()
	stop := func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Errorf("tron client Run did not return")
		}
	}
	t.Cleanup(stop)
	return tc, stop
}

func TestTronClient(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0")
	tc, _ := startTron(t, hub.addr())
	waitUntil(t, "tron connected", tc.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	r, err := tc.Command(ctx, "jaeger", "ieb switch --off nuc1")
	if err != nil || r.Code != opscore.Done || r.Actor != "jaeger" || r.Commander != "fliswarm.fliswarm" {
		t.Fatalf("command: %+v, %v", r, err)
	}
	r, err = tc.Command(ctx, "jaeger", "please fail")
	if err != nil || r.Code != opscore.Failed {
		t.Fatalf("failing command: %+v, %v", r, err)
	}
	if k, ok := r.Get("error"); !ok || k.Values[0] != "it failed" {
		t.Errorf("failure keywords: %+v", r.Keywords)
	}

	// Replies are matched by mid, whatever their order.
	held := make(chan HubReply, 1)
	go func() {
		r, err := tc.Command(ctx, "jaeger", "hold on")
		if err != nil {
			t.Errorf("held command: %v", err)
		}
		held <- r
	}()
	waitUntil(t, "held command sent", func() bool { return len(hub.received()) == 3 })
	r2, err := tc.Command(ctx, "jaeger", "release")
	if err != nil || r2.Code != opscore.Done {
		t.Fatalf("release: %+v, %v", r2, err)
	}
	r1 := <-held
	if r1.MID == r2.MID || r1.Code != opscore.Done {
		t.Errorf("held reply %+v, release reply %+v", r1, r2)
	}

	got := hub.received()
	want := []string{
		"fliswarm.fliswarm 1 jaeger ieb switch --off nuc1",
		"fliswarm.fliswarm 2 jaeger please fail",
		"fliswarm.fliswarm 3 jaeger hold on",
		"fliswarm.fliswarm 4 jaeger release",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines sent to the hub (-want +got):\n%s", diff)
	}
}

func TestTronClientHubDrops(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0")
	addr := hub.addr()
	tc, _ := startTron(t, addr)
	waitUntil(t, "tron connected", tc.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := tc.Command(ctx, "jaeger", "hold forever")
		errc <- err
	}()
	waitUntil(t, "command sent", func() bool { return len(hub.received()) == 1 })
	hub.close()
	if err := <-errc; !errors.Is(err, ErrHubDisconnected) {
		t.Errorf("pending command after the hub dropped: %v", err)
	}
	waitUntil(t, "tron disconnected", func() bool { return !tc.Connected() })
	if _, err := tc.Command(ctx, "jaeger", "x"); !errors.Is(err, ErrHubNotConnected) {
		t.Errorf("command without a hub: %v", err)
	}
	// The hub comes back on the same address: the client reconnects.
	startFakeHub(t, addr)
	waitUntil(t, "tron reconnected", tc.Connected)
	if r, err := tc.Command(ctx, "jaeger", "x"); err != nil || r.Code != opscore.Done {
		t.Errorf("after reconnecting: %+v, %v", r, err)
	}
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTronUnreachable(t *testing.T) {
	tc, stop := startTron(t, freeAddr(t))
	start := time.Now()
	_, err := tc.Command(context.Background(), "jaeger", "x")
	if !errors.Is(err, ErrHubNotConnected) {
		t.Errorf("command with the hub unreachable: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("command with the hub unreachable took %v", d)
	}
	stop() // Run returns at once although it is retrying
}

func TestHardReboot(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0")
	h := newHarness(t, harnessConfig{
		tronAddr: hub.addr(),
		spec: func(s *v1.Swarm) {
			s.Power = &v1.Power{Actor: "jaeger", Command: v1.PowerCommand{PowerOn: "ieb switch --on", PowerOff: "ieb switch --off"}}
			n := s.Nodes["gfa1"]
			n.Power = &v1.NodePower{Device: "nuc1"}
			s.Nodes["gfa1"] = n
		},
	})
	waitUntil(t, "tron connected", func() bool {
		return h.link.State().Connected
	})
	c := h.dial()
	res := send(t, c, "reboot --hard -n gfa1,gfa2")
	if res.final.Code != opscore.Done {
		t.Fatalf("reboot --hard ended %q: %q", res.final.Line, res.lines())
	}
	for _, l := range []string{`i text="Powering off computers."`, `i text="Powering on computers."`, "i enabledNodes=gfa1,gfa2,fvc", "i node=gfa1,127.0.0.1,tcp://10.0.0.1:2375,T,T"} {
		if !res.hasLine(l) {
			t.Errorf("lacks %q: %q", l, res.lines())
		}
	}
	bodies := powerBodies(t, hub.received())
	slices.Sort(bodies[:2]) // each phase runs its nodes concurrently
	slices.Sort(bodies[2:])
	want := []string{"ieb switch --off gfa2", "ieb switch --off nuc1", "ieb switch --on gfa2", "ieb switch --on nuc1"}
	if diff := cmp.Diff(want, bodies); diff != "" {
		t.Errorf("power commands (-want +got):\n%s", diff)
	}
}

// powerBodies returns the commands sent to jaeger, checking the
// commander; other lines (startNubs) are skipped.
func powerBodies(t *testing.T, lines []string) []string {
	t.Helper()
	var bodies []string
	for _, l := range lines {
		f := strings.Fields(l)
		if f[2] == "hub" {
			continue
		}
		if f[0] != "fliswarm.fliswarm" || f[2] != "jaeger" {
			t.Errorf("hub got %q", l)
		}
		bodies = append(bodies, strings.Join(f[3:], " "))
	}
	return bodies
}

func TestHardRebootTronUnreachable(t *testing.T) {
	h := newHarness(t, harnessConfig{
		tronAddr: freeAddr(t),
		spec: func(s *v1.Swarm) {
			s.Power = &v1.Power{Actor: "jaeger", Command: v1.PowerCommand{PowerOn: "on", PowerOff: "off"}}
		},
	})
	c := h.dial()
	if res := send(t, c, "status"); res.final.Code != opscore.Done {
		t.Errorf("status without tron: %q", res.final.Line)
	}
	res := send(t, c, "reboot --hard -n gfa1")
	if res.final.Code != opscore.Failed {
		t.Errorf("reboot --hard without tron: %q", res.lines())
	}
	if len(res.find(func(r opscore.Reply) bool {
		v, ok := kwValues(r, "error")
		return ok && v[0] == "gfa1" && strings.Contains(v[1], "not connected")
	})) != 2 {
		t.Errorf("want an error naming gfa1 for power off and for power on: %q", res.lines())
	}

	// Without a power configuration the hard reboot fails at once.
	h2 := newHarness(t, harnessConfig{tronAddr: freeAddr(t)})
	if res := send(t, h2.dial(), "reboot --hard"); res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, "power") {
		t.Errorf("reboot --hard without power config: %q", res.final.Line)
	}
}

func TestSoftReboot(t *testing.T) {
	type call struct {
		name string
		args []string
	}
	var mu sync.Mutex
	var calls []call
	h := newHarness(t, harnessConfig{
		opts: func(o *Options) {
			o.Exec = func(ctx context.Context, name string, args ...string) ([]byte, int, error) {
				mu.Lock()
				calls = append(calls, call{name, args})
				mu.Unlock()
				switch args[4] {
				case "broken@127.0.0.1":
					return []byte("Permission denied\n"), 1, nil
				default:
					return nil, 255, nil // the connection dropped as the node went down
				}
			}
		},
		spec: func(s *v1.Swarm) {
			s.RebootCommand = "sudo /sbin/reboot now"
			n := s.Nodes["gfa2"]
			n.User = "broken"
			s.Nodes["gfa2"] = n
			n = s.Nodes["fvc"]
			n.User = ""
			s.Nodes["fvc"] = n
		},
	})
	c := h.dial()
	res := send(t, c, "reboot")
	if res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, "gfa2, fvc") {
		t.Errorf("reboot ended %q", res.final.Line)
	}
	for _, l := range []string{
		`i text="Restarting 127.0.0.1."`,
		`e text="Failed rebooting 127.0.0.1 (ssh exit code 1: Permission denied)."`,
		`e text="Failed rebooting 127.0.0.1: node fvc has no ssh user configured."`,
		"i enabledNodes=gfa1,gfa2,fvc",
	} {
		if !res.hasLine(l) {
			t.Errorf("lacks %q: %q", l, res.lines())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(calls, func(a, b call) int { return strings.Compare(strings.Join(a.args, " "), strings.Join(b.args, " ")) })
	want := []call{
		{"ssh", []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "broken@127.0.0.1", "sudo", "/sbin/reboot", "now"}},
		{"ssh", []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "sdss@127.0.0.1", "sudo", "/sbin/reboot", "now"}},
	}
	if diff := cmp.Diff(want, calls, cmp.AllowUnexported(call{})); diff != "" {
		t.Errorf("ssh runs (-want +got):\n%s", diff)
	}
}
