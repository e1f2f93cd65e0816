package actor

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/camsim"
)

// moveNode points node's camera at addr (host:port) in the spec.
func (h *harness) moveNode(node, addr string) {
	h.t.Helper()
	spec, _ := h.rec.Spec()
	next := *spec
	next.Nodes = maps.Clone(spec.Nodes)
	n := next.Nodes[node]
	_, port, _ := net.SplitHostPort(addr)
	n.Port, _ = strconv.Atoi(port)
	next.Nodes[node] = n
	h.rec.setSpec(&next)
}

// freezer forwards TCP connections to a target and can freeze them: bytes
// stop flowing both ways while the connections stay open, like a node
// whose link went down.
type freezer struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	wake   chan struct{} // closed and replaced on thaw

	mu    sync.Mutex
	conns []net.Conn
}

func startFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, wake: make(chan struct{})}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, u)
			f.mu.Unlock()
			go f.pipe(u, c)
			go f.pipe(c, u)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	return f
}

func (f *freezer) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() { // hold the bytes while frozen
			f.mu.Lock()
			w := f.wake
			f.mu.Unlock()
			<-w
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) addr() string { return f.ln.Addr().String() }
func (f *freezer) freeze()      { f.frozen.Store(true) }
func (f *freezer) thaw() {
	f.mu.Lock()
	f.frozen.Store(false)
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

// fastWatch makes camera clients notice a silent camera in well under a
// second, and redial quickly.
func fastWatch(o *device.Options) {
	*o = device.Options{
		PingInterval: 100 * time.Millisecond, PingTimeout: 300 * time.Millisecond,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	}
}

// A camera that stops answering (its link is cut, the connection stays
// open) is disconnected within the liveness window; its command in flight
// ends with a warning naming it; talk then skips it at once while the
// others answer; when the link comes back it is connected again.
func TestCameraThatStopsAnsweringIsDisconnected(t *testing.T) {
	h := newHarness(t, harnessConfig{devices: fastWatch})
	fz := startFreezer(t, h.cams["gfa1"].addr)
	h.moveNode("gfa1", fz.addr())
	waitUntil(t, "gfa1 through the freezer", func() bool {
		c := h.actor.device("gfa1")
		return c != nil && c.Addr() == fz.addr() && c.Connected()
	})
	c := h.dial()
	hang := make(chan result, 1)
	go func() { hang <- send(t, c, "talk -n gfa1 sim-hang") }()
	waitUntil(t, "sim-hang in flight", func() bool { return h.actor.device("gfa1").InFlight() > 0 })

	start := time.Now()
	fz.freeze()
	res := <-hang
	ended := time.Since(start)
	// Window: 2 ping intervals + the ping timeout = 0.5 s; allow slack for
	// a loaded machine, far below the command timeout (300 s).
	if ended > 3*time.Second {
		t.Errorf("talk to a silent camera ended after %v", ended)
	}
	if res.final.Code != opscore.Failed {
		t.Errorf("talk to a silent camera ended %q", res.final.Line)
	}
	warned := res.find(func(r opscore.Reply) bool {
		v, ok := kwValues(r, "error")
		return ok && r.Code == opscore.Warning && len(v) == 2 && v[0] == "gfa1" && strings.Contains(v[1], "not answering")
	})
	if len(warned) != 1 {
		t.Errorf("no warning naming gfa1: %q", res.lines())
	}
	h.waitDevice("gfa1", false)
	if ok, reason := h.actor.cams.State("gfa1"); ok || reason == "" {
		t.Errorf("CameraState(gfa1) = %v, %q", ok, reason)
	}

	start = time.Now()
	res = send(t, c, "talk status")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("talk status took %v with gfa1 silent", d)
	}
	if res.final.Code != opscore.Done || !res.hasLine(`w text="Failed connecting to gfa1."`) {
		t.Errorf("talk status with gfa1 silent: %q", res.lines())
	}

	fz.thaw()
	start = time.Now()
	h.waitDevice("gfa1", true)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("reconnected %v after the link came back", d)
	}
	if res := send(t, c, "talk -n gfa1 ping"); res.final.Code != opscore.Done {
		t.Errorf("talk after the link came back: %q", res.lines())
	}
}

// A process of another name on the node's camera port is not believed:
// the camera stays disconnected, status says why, talk skips it.
func TestStrayActorOnTheCameraPortIsNotBelieved(t *testing.T) {
	h := newHarness(t, harnessConfig{devices: fastWatch})
	stray := startCamera(t, "gfa2", "127.0.0.1:0", camsim.Config{DataDir: h.dataDir}) // a second gfa2
	h.moveNode("gfa1", stray.addr)
	waitUntil(t, "gfa1's client on the stray's port", func() bool {
		c := h.actor.device("gfa1")
		return c != nil && c.Addr() == stray.addr
	})
	waitUntil(t, "the stray refused", func() bool {
		_, reason := h.actor.cams.State("gfa1")
		return strings.Contains(reason, `says it is "gfa2"`)
	})
	// It stays refused over several attempts.
	time.Sleep(300 * time.Millisecond)
	if ok, _ := h.actor.cams.State("gfa1"); ok || h.rec.deviceConnected("gfa1") {
		t.Fatal("the stray actor was taken for gfa1's camera")
	}
	c := h.dial()
	res := send(t, c, "status")
	if len(res.find(func(r opscore.Reply) bool {
		v, _ := kwValues(r, "text")
		return r.Code == opscore.Warning && len(v) == 1 && strings.HasPrefix(v[0], "Camera gfa1 is not connected") && strings.Contains(v[0], "gfa2")
	})) != 1 {
		t.Errorf("status does not say why gfa1 is not connected: %q", res.lines())
	}
	res = send(t, c, "talk -n gfa1 ping")
	if res.final.Code != opscore.Failed || !res.hasLine(`w text="Failed connecting to gfa1."`) {
		t.Errorf("talk to the refused camera: %q", res.lines())
	}
	// The real camera takes its port back.
	h.moveNode("gfa1", h.cams["gfa1"].addr)
	h.waitDevice("gfa1", true)
}

// floodUser is a raw connection that counts what it receives.
type floodUser struct {
	conn  net.Conn
	uid   string
	mu    sync.Mutex
	lines []string
	flood atomic.Int64
	done  chan struct{}
}

func dialFloodUser(t *testing.T, addr string, keep func(line string) bool) *floodUser {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	u := &floodUser{conn: conn, done: make(chan struct{})}
	br := bufio.NewReader(conn)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(l, "yourUserID=") {
			u.uid = strings.Fields(l)[0]
		}
		if strings.Contains(l, "version=") {
			break
		}
	}
	go func() {
		defer close(u.done)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.Contains(l, `"flood `) {
				u.flood.Add(1)
			}
			if keep(l) {
				u.mu.Lock()
				u.lines = append(u.lines, strings.TrimSuffix(l, "\n"))
				u.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-u.done })
	return u
}

func (u *floodUser) has(prefix string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// A user who starts a flood and disconnects: none of the camera's
// remaining replies reach anyone else (they are discarded and counted),
// while the other user's commands answer throughout.
func TestRepliesOfAGoneUserReachNobody(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	other := dialFloodUser(t, h.addr, func(l string) bool { return !strings.Contains(l, `"flood `) })
	leaver := dialFloodUser(t, h.addr, func(string) bool { return false })
	const n = 20_000
	if _, err := fmt.Fprintf(leaver.conn, "1 talk -n gfa1 sim-flood %d\n", n); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the flood under way", func() bool { return leaver.flood.Load() > 100 })
	leaver.conn.Close()
	<-leaver.done
	got := leaver.flood.Load()

	// The other user's ping answers while the camera floods.
	fmt.Fprintf(other.conn, "1 ping\n")
	waitUntil(t, "ping answered", func() bool { return other.has(other.uid + " 1 : text=Pong.") })

	cam := h.actor.device("gfa1")
	waitUntil(t, "the flood's end discarded", func() bool { return cam.InFlight() == 0 && cam.Discarded() > 0 })
	if d := cam.Discarded(); d+uint64(got) < n/2 {
		t.Errorf("discarded %d + received %d of %d", d, got, n)
	}
	// Nothing of it reached the other user.
	fmt.Fprintf(other.conn, "2 ping\n")
	waitUntil(t, "second ping answered", func() bool { return other.has(other.uid + " 2 : ") })
	if f := other.flood.Load(); f != 0 {
		t.Errorf("%d flood lines reached another user", f)
	}
}

// A raw camera that answers pings as gfa1 and, to `weird`, sends a line
// that cannot be decoded and a keyword named raw.
func startWeirdCamera(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				reply := func(id int, code string, data clu.Object) {
					b, _ := camsim.MarshalReply(clu.Reply{Header: clu.Header{CommandID: id, MessageCode: code, Sender: "gfa1"}, Data: data})
					c.Write(append(b, '\n'))
				}
				for sc.Scan() {
					id, cmd, _ := clu.ParseCommand(sc.Text())
					reply(id, clu.CodeRunning, nil)
					if cmd == "weird" {
						fmt.Fprintf(c, `{"header": {"command_id": %d, "message_code": "i", "sender": "gfa1"}, "data": {"temp": }}`+"\n", id)
						reply(id, clu.CodeInfo, clu.Object{{Key: "RAW", Value: "x y"}, {Key: "text", Value: "fine"}})
						io.WriteString(c, "\x00garbage \"quoted\"; raw=1\n") // unsolicited
					}
					reply(id, clu.CodeDone, nil)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestUndecodableLinesAndRawAreRelayed(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	addr := startWeirdCamera(t)
	h.moveNode("gfa1", addr)
	waitUntil(t, "gfa1 on the weird camera", func() bool {
		c := h.actor.device("gfa1")
		return c != nil && c.Addr() == addr && c.Connected()
	})
	var mu sync.Mutex
	var broadcasts []opscore.Reply
	c := h.dial(opscore.WithUnsolicited(func(r opscore.Reply) {
		mu.Lock()
		broadcasts = append(broadcasts, r)
		mu.Unlock()
	}))
	res := send(t, c, "talk -n gfa1 weird")
	if res.final.Code != opscore.Done {
		t.Fatalf("talk ended %q", res.final.Line)
	}
	und := res.find(func(r opscore.Reply) bool {
		v, _ := kwValues(r, "text")
		return r.Code == opscore.Warning && len(v) == 2 && v[0] == "gfa1" &&
			strings.HasPrefix(v[1], device.UndecodableText) && strings.Contains(v[1], `"temp": }`)
	})
	if len(und) != 1 {
		t.Errorf("the undecodable line is not relayed to the command: %q", res.lines())
	}
	if !res.hasLine(`i camRaw=gfa1,"x y"; text=gfa1,fine`) {
		t.Errorf("raw not relayed as camRaw: %q", res.lines())
	}
	waitUntil(t, "the unsolicited garbage broadcast", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range broadcasts {
			if v, _ := kwValues(r, "text"); r.UserID == 0 && len(v) == 2 && v[0] == "gfa1" && strings.Contains(v[1], `garbage "quoted"; raw=1`) {
				return true
			}
		}
		return false
	})
	for _, r := range append(res.replies, broadcasts...) {
		checkDictionary(t, nodeNames, r.Line)
	}
}

func TestConfigErrorIsBroadcastAndInStatus(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	var mu sync.Mutex
	var got []string
	c := h.dial(opscore.WithUnsolicited(func(r opscore.Reply) {
		mu.Lock()
		got = append(got, r.Line)
		mu.Unlock()
	}))
	const want = `0 0 w error=fliswarm,"configuration edit rejected: nodes.gfa2.port: must be from 1 to 65535"`
	h.actor.SetConfigError("nodes.gfa2.port: must be from 1 to 65535")
	h.actor.SetConfigError("nodes.gfa2.port: must be from 1 to 65535") // the same again: said once
	waitUntil(t, "the broadcast", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1] == want
	})
	res := send(t, c, "status")
	if !res.hasLine(`w error=fliswarm,"configuration edit rejected: nodes.gfa2.port: must be from 1 to 65535"`) {
		t.Errorf("status lacks the rejection: %q", res.lines())
	}
	mu.Lock()
	n := 0
	for _, l := range got {
		if l == want {
			n++
		}
	}
	mu.Unlock()
	if n != 1 {
		t.Errorf("rejection broadcast %d times", n)
	}
	h.actor.SetConfigError("")
	res = send(t, c, "status")
	for _, l := range res.lines() {
		if strings.Contains(l, "configuration edit rejected") {
			t.Errorf("status still reports the rejection after it was cleared: %q", l)
		}
	}
}

// A client that reads slowly gets a whole flood, in order.
func TestSlowReaderGetsEverything(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 50_000
	fmt.Fprintf(conn, "1 talk -n gfa1 sim-flood %d\n", n)
	br := bufio.NewReaderSize(conn, 512)
	next := 1
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d flood lines: %v", next-1, err)
		}
		if i := strings.Index(l, `"flood `); i >= 0 {
			k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(l[i+7:]), `"`))
			if k != next {
				t.Fatalf("flood line %d, want %d", k, next)
			}
			next++
			if next%1000 == 0 {
				time.Sleep(time.Millisecond) // a slow reader
			}
		}
		if strings.Contains(l, " 1 : ") || strings.Contains(l, " 1 f ") {
			break
		}
	}
	if next-1 != n {
		t.Errorf("got %d of %d flood lines", next-1, n)
	}
}
