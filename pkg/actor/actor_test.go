package actor

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/camsim"
)

func TestGreeting(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	br := bufio.NewReader(conn)
	var got []string
	for range 3 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the greeting: %v (so far %q)", err, got)
		}
		got = append(got, strings.TrimSuffix(line, "\n"))
	}
	want := []string{
		"1 0 i yourUserID=1; num_users=1",
		"0 0 i UserInfo=1,127.0.0.1",
		`1 0 i version="test-1.0"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("greeting (-want +got):\n%s", diff)
	}
}

func TestStatusLinesExact(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "status")
	want := []string{
		"> ",
		"i enabledNodes=gfa1,gfa2,fvc",
		"i hub=F,NA,F,NA", // no hub configured
		"i node=gfa1,127.0.0.1,tcp://10.0.0.1:2375,T,T",
		"d container=gfa1,0123456789ab",
		"d volume=gfa1,data,T,:/data",
		"i node=gfa2,127.0.0.1,tcp://10.0.0.2:2375,T,T",
		"d container=gfa2,0123456789ab",
		`w text="Volume data not present in gfa2."`,
		"d volume=gfa2,data,F,NA",
		`w text="Node 127.0.0.1 is not pinging back."`,
		`w text="Docker client on node 127.0.0.1 is not connected."`,
		"i node=fvc,127.0.0.1,tcp://10.0.0.3:2375,F,F",
		": ",
	}
	if diff := cmp.Diff(want, res.lines()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(res.final.Line, fmt.Sprintf("%d 1 : ", c.UserID())) {
		t.Errorf("final line %q", res.final.Line)
	}
}

func TestTalkStatusFromThreeCameras(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "talk status")
	if res.final.Code != opscore.Done {
		t.Fatalf("talk status ended %q: %v", res.final.Line, res.lines())
	}
	seen := map[string]string{}
	for _, r := range res.find(func(r opscore.Reply) bool { _, ok := r.Get("status"); return ok }) {
		vals, _ := kwValues(r, "status")
		if r.Code != opscore.Info || r.CmdID != 1 || r.UserID != c.UserID() {
			t.Errorf("status line %q: want code i for user %d command 1", r.Line, c.UserID())
		}
		if len(vals) < 3 {
			t.Errorf("status line %q has too few values", r.Line)
			continue
		}
		seen[vals[0]] = vals[1]
	}
	want := map[string]string{"gfa1": "gfa1n", "gfa2": "gfa2n", "fvc": "fvc1n"}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("node -> camera in status lines (-want +got):\n%s", diff)
	}
	// Device lifecycle codes never end fliswarm's command early.
	for _, r := range res.replies[:len(res.replies)-1] {
		if r.Code.Terminal() {
			t.Errorf("a terminal reply before the end: %q", r.Line)
		}
	}
}

func TestTalkSelection(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "talk -n gfa1,nope -c fvc status")
	if res.final.Code != opscore.Done {
		t.Fatalf("ended %q", res.final.Line)
	}
	if !res.hasLine(`w text="Cannot find node nope."`) {
		t.Errorf("no warning for the unknown node: %q", res.lines())
	}
	var nodes []string
	for _, r := range res.find(func(r opscore.Reply) bool { _, ok := r.Get("status"); return ok }) {
		v, _ := kwValues(r, "status")
		nodes = append(nodes, v[0])
	}
	slices.Sort(nodes)
	if diff := cmp.Diff([]string{"fvc", "gfa1"}, nodes); diff != "" {
		t.Errorf("cameras that answered (-want +got):\n%s", diff)
	}
}

func TestTalkExposeBundle(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "talk expose 0.1")
	if res.final.Code != opscore.Done {
		t.Fatalf("talk expose ended %q: %q", res.final.Line, res.lines())
	}
	bundles := res.find(func(r opscore.Reply) bool { _, ok := r.Get("filename_bundle"); return ok })
	if len(bundles) != 1 {
		t.Fatalf("want one filename_bundle, got %d: %q", len(bundles), res.lines())
	}
	if bundles[0].Line != res.replies[len(res.replies)-2].Line {
		t.Errorf("filename_bundle is not the last line before the end")
	}
	files, _ := kwValues(bundles[0], "filename_bundle")
	if len(files) != 3 {
		t.Fatalf("want 3 files, got %q", files)
	}
	var fromFilename []string
	for _, r := range res.find(func(r opscore.Reply) bool { _, ok := r.Get("filename"); return ok }) {
		v, _ := kwValues(r, "filename")
		if len(v) != 3 || v[1] != camsim.CameraName(v[0], "APO") {
			t.Errorf("filename line %q: want node, camera, path", r.Line)
			continue
		}
		fromFilename = append(fromFilename, v[2])
	}
	if diff := cmp.Diff(fromFilename, files); diff != "" {
		t.Errorf("bundle vs filename keywords (-filename +bundle):\n%s", diff)
	}
	for _, f := range files {
		if !strings.HasPrefix(f, h.dataDir) {
			t.Errorf("file %s outside the data dir", f)
		}
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("file %s: %v", f, err)
		}
	}
}

func TestTalkStoppedCamera(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.cams["fvc"].stop()
	h.waitDevice("fvc", false)
	c := h.dial()
	res := send(t, c, "talk status")
	if res.final.Code != opscore.Done {
		t.Fatalf("ended %q: %q", res.final.Line, res.lines())
	}
	if !res.hasLine(`w text="Failed connecting to fvc."`) {
		t.Errorf("no warning for fvc: %q", res.lines())
	}

	// Nothing connected at all: the command fails, it does not hang.
	res = send(t, c, "talk -n fvc status")
	if res.final.Code != opscore.Failed {
		t.Errorf("talk to a stopped camera only: ended %q", res.final.Line)
	}
}

func TestTalkCameraKilledMidExpose(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	// Reach gfa2 through a proxy that can cut the connection abruptly.
	px := startProxy(t, h.cams["gfa2"].addr)
	spec, _ := h.rec.Spec()
	next := *spec
	next.Nodes = maps.Clone(spec.Nodes)
	n := next.Nodes["gfa2"]
	_, port, _ := net.SplitHostPort(px.addr())
	fmt.Sscan(port, &n.Port)
	next.Nodes["gfa2"] = n
	h.rec.setSpec(&next)
	waitUntil(t, "gfa2 through the proxy", func() bool {
		c := h.actor.device("gfa2")
		return c != nil && c.Addr() == px.addr() && c.Connected()
	})

	c := h.dial()
	integrating := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
	defer cancel()
	var mu sync.Mutex
	var lines []string
	done := make(chan opscore.Reply, 1)
	go func() {
		// 600 s at the harness's exposure scale of 0.05 is 30 s.
		final, err := c.Send(ctx, "talk -n gfa2 expose 600", func(r opscore.Reply) {
			mu.Lock()
			lines = append(lines, stripHeader(r.Line))
			mu.Unlock()
			if v, ok := kwValues(r, "exposure_state"); ok && len(v) > 2 && v[2] == "integrating" {
				once.Do(func() { close(integrating) })
			}
		})
		if err != nil {
			t.Errorf("send: %v", err)
		}
		done <- final
	}()
	select {
	case <-integrating:
	case <-ctx.Done():
		t.Fatal("the exposure never started")
	}
	px.kill()
	var final opscore.Reply
	select {
	case final = <-done:
	case <-ctx.Done():
		t.Fatal("the talk did not end after its camera died")
	}
	mu.Lock()
	defer mu.Unlock()
	if final.Code != opscore.Failed {
		t.Errorf("ended %q, want f (its only camera failed)", final.Line)
	}
	found := false
	for _, l := range lines {
		if strings.HasPrefix(l, "w error=gfa2,") && strings.Contains(l, "disconnected") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning naming gfa2: %q", lines)
	}
}

func TestTalkPartialFailureFinishes(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	// A bad exposure time fails on every camera: the talk fails.
	res := send(t, c, "talk expose -5")
	if res.final.Code != opscore.Failed {
		t.Errorf("all cameras failed, talk ended %q", res.final.Line)
	}
	if n := len(res.find(func(r opscore.Reply) bool { _, ok := r.Get("error"); return ok && r.Code == opscore.Warning })); n != 3 {
		t.Errorf("want the 3 cameras' errors relayed as warnings, got %d: %q", n, res.lines())
	}
	// One camera busy exposing fails a second expose; the others succeed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	busy := h.dial()
	exposing := make(chan struct{})
	var once sync.Once
	go func() {
		_, _ = busy.Send(ctx, "talk -n gfa1 expose 600", func(r opscore.Reply) {
			if v, ok := kwValues(r, "exposure_state"); ok && len(v) > 2 && v[2] == "integrating" {
				once.Do(func() { close(exposing) })
			}
		})
	}()
	select {
	case <-exposing:
	case <-time.After(waitFor):
		t.Fatal("gfa1 never started exposing")
	}
	res = send(t, c, "talk expose 0")
	if res.final.Code != opscore.Done {
		t.Errorf("two of three cameras succeeded, talk ended %q: %q", res.final.Line, res.lines())
	}
	files, _ := kwValues(res.find(func(r opscore.Reply) bool { _, ok := r.Get("filename_bundle"); return ok })[0], "filename_bundle")
	if len(files) != 2 {
		t.Errorf("want 2 files, got %q", files)
	}
}

func TestTalkErrors(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	for _, body := range []string{"talk", "talk -n gfa1", "talk status -c", "talk -n nope status"} {
		res := send(t, c, body)
		if res.final.Code != opscore.Failed {
			t.Errorf("%s: ended %q", body, res.final.Line)
		}
		if _, ok := res.final.Get("error"); !ok {
			t.Errorf("%s: no error keyword in %q", body, res.final.Line)
		}
	}
}

func TestDisableEnable(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "disable gfa2 nope")
	want := []string{"> ", `w text="Cannot find node nope."`, "i enabledNodes=gfa1,fvc", ": "}
	if diff := cmp.Diff(want, res.lines()); diff != "" {
		t.Errorf("disable (-want +got):\n%s", diff)
	}
	// The camera clients follow the enabled nodes: gfa2's stops, and is
	// recorded as disconnected.
	waitUntil(t, "gfa2's camera client stopped", func() bool {
		return h.actor.device("gfa2") == nil && !h.rec.deviceConnected("gfa2")
	})
	res = send(t, c, "status")
	if res.find(func(r opscore.Reply) bool { v, ok := kwValues(r, "node"); return ok && v[0] == "gfa2" }) != nil {
		t.Errorf("status reports the disabled gfa2")
	}
	res = send(t, c, "talk -n gfa2 status")
	if res.final.Code != opscore.Failed || !res.hasLine(`w text="Node gfa2 is disabled."`) {
		t.Errorf("talk to a disabled node: %q", res.lines())
	}

	res = send(t, c, "enable gfa2")
	if !res.hasLine("i enabledNodes=gfa1,gfa2,fvc") || res.final.Code != opscore.Done {
		t.Errorf("enable: %q", res.lines())
	}
	h.waitDevice("gfa2", true)
	if res := send(t, c, "talk -n gfa2 ping"); res.final.Code != opscore.Done {
		t.Errorf("talk after enable: %q", res.lines())
	}

	res = send(t, c, "disable --all")
	if !res.hasLine("i enabledNodes") {
		t.Errorf("disable --all: %q", res.lines())
	}
	res = send(t, c, "enable -a")
	if !res.hasLine("i enabledNodes=gfa1,gfa2,fvc") {
		t.Errorf("enable -a: %q", res.lines())
	}
}

func TestReconnect(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.rec.onConverge = func(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error {
		out := map[string]error{}
		for _, n := range nodes {
			if h.actor.device(n).Connected() {
				out[n] = fmt.Errorf("%s: camera still connected during converge: %w", n, errTest)
				continue
			}
			// The reconciler reports its steps as it takes them.
			ctr := "flicamera-" + n
			for _, s := range []v1.DeployStep{
				{Kind: v1.StepPull, Target: "reg:5000/flicamera:latest"},
				{Kind: v1.StepPulled, Target: "reg:5000/flicamera:latest", ImageID: "sha256:abcdef0123456789", Status: "Status: Image is up to date"},
				{Kind: v1.StepRemoveContainer, Target: ctr, Running: true},
				{Kind: v1.StepRun, Target: ctr, Image: "reg:5000/flicamera:latest"},
			} {
				s.Node = n
				opts.Progress(s)
			}
			h.cams[n].restart(t) // the container is recreated
			out[n] = nil
		}
		return out
	}
	c := h.dial()
	res := send(t, c, "reconnect -n gfa1 -c fvc --force")
	if res.final.Code != opscore.Done {
		t.Fatalf("reconnect ended %q: %q", res.final.Line, res.lines())
	}
	calls := h.rec.convergeCalls()
	if len(calls) != 1 || !calls[0].opts.Force || !calls[0].opts.Redeploy || !slices.Equal(calls[0].nodes, []string{"gfa1", "fvc"}) {
		t.Errorf("converge calls: %+v", calls)
	}
	// The steps, in order, as the original worded them.
	want := []string{
		`d text="gfa1: pulling latest image."`,
		`d text="gfa1: pulled reg:5000/flicamera:latest (image abcdef012345): Status: Image is up to date."`,
		`w text="gfa1: removing running container flicamera-gfa1."`,
		`i text="gfa1: running flicamera-gfa1 from reg:5000/flicamera:latest."`,
	}
	var steps []string
	for _, l := range res.lines() {
		if strings.Contains(l, `text="gfa1: `) && !strings.Contains(l, "reconnected") {
			steps = append(steps, l)
		}
	}
	if !slices.Equal(steps, want) {
		t.Errorf("gfa1's steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range []string{
		"i node=gfa1,127.0.0.1,tcp://10.0.0.1:2375,T,T",
		"d container=gfa1,0123456789ab",
		"i node=fvc,127.0.0.1,tcp://10.0.0.3:2375,F,F",
		fmt.Sprintf(`d text="gfa1: reconnected to device on port %d."`, h.cams["gfa1"].port(t)),
	} {
		if !res.hasLine(l) {
			t.Errorf("reconnect lacks %q: %q", l, res.lines())
		}
	}
	// The cameras answer again.
	if res := send(t, c, "talk -n gfa1,fvc ping"); res.final.Code != opscore.Done {
		t.Errorf("talk after reconnect: %q", res.lines())
	}
	// Without --force, reconnect still redeploys, and leaves the volumes.
	if res := send(t, c, "reconnect -n gfa2"); res.final.Code != opscore.Done {
		t.Fatalf("reconnect -n gfa2 ended %q: %q", res.final.Line, res.lines())
	}
	if calls := h.rec.convergeCalls(); len(calls) != 2 || calls[1].opts.Force || !calls[1].opts.Redeploy {
		t.Errorf("converge calls: %+v", calls)
	}
}

func TestReconnectFailures(t *testing.T) {
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.DeviceWait = time.Second }})
	h.rec.onConverge = func(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error {
		out := map[string]error{}
		for _, n := range nodes {
			switch n {
			case "gfa2":
				out[n] = fmt.Errorf("gfa2: docker engine not answering: %w", errTest)
			case "fvc":
				h.cams[n].stop() // converged, but the camera never answers
			}
		}
		return out
	}
	c := h.dial()
	res := send(t, c, "reconnect")
	if res.final.Code != opscore.Failed {
		t.Fatalf("ended %q", res.final.Line)
	}
	if got := res.final.Line; !strings.Contains(got, "gfa2") || !strings.Contains(got, "fvc") || strings.Contains(got, "gfa1") {
		t.Errorf("failure should name gfa2 and fvc only: %q", got)
	}
	if !res.hasLine(`w text="fvc: failed to connect to device."`) {
		t.Errorf("no warning for fvc: %q", res.lines())
	}
	if len(res.find(func(r opscore.Reply) bool {
		v, ok := kwValues(r, "error")
		return ok && r.Code == opscore.Error && v[0] == "gfa2"
	})) != 1 {
		t.Errorf("no error line for gfa2: %q", res.lines())
	}
	// The paused clients were resumed: gfa1 answers, gfa2 reconnected.
	h.waitDevice("gfa2", true)
	if res := send(t, c, "talk -n gfa1,gfa2 ping"); res.final.Code != opscore.Done {
		t.Errorf("talk after reconnect: %q", res.lines())
	}
}

func TestManyClients(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	const n = 20
	var wg sync.WaitGroup
	ids := make([]int, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
			defer cancel()
			c, err := opscore.Dial(ctx, h.addr)
			if err != nil {
				t.Errorf("client %d: dial: %v", i, err)
				return
			}
			t.Cleanup(func() { c.Close() }) // ids are distinct among connected users
			ids[i] = c.UserID()
			for _, body := range []string{"status", "talk -n gfa1 status", "ping"} {
				r, err := c.Send(ctx, body, nil)
				if err != nil {
					t.Errorf("client %d: %s: %v", i, body, err)
					return
				}
				if r.Code != opscore.Done {
					t.Errorf("client %d: %s ended %q", i, body, r.Line)
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Errorf("user ids not distinct: %v", ids)
	}
}

func TestGarbageAndUnknownCommands(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * waitFor))
	br := bufio.NewReader(conn)
	for range 3 { // greeting
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	readUntil := func(prefix string) string {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(line, prefix) {
				return strings.TrimSuffix(line, "\n")
			}
		}
	}
	for _, tc := range []struct {
		line string
		id   int
	}{
		{`3 talk "unterminated`, 3},
		{"4 \x01\x02\x03", 4},
		{"5 frobnicate --now", 5},
		{"6 status --bogus", 6},
		{"7 simulate", 7},
		{"8 reboot extra", 8},
		{"\xff\xfe 9", 0},
	} {
		if _, err := fmt.Fprintf(conn, "%s\n", tc.line); err != nil {
			t.Fatal(err)
		}
		line := readUntil(fmt.Sprintf("1 %d f ", tc.id))
		if !strings.Contains(line, "error=") {
			t.Errorf("%q: failure without error: %q", tc.line, line)
		}
		if tc.id == 5 && !strings.Contains(line, "frobnicate") {
			t.Errorf("unknown command reply does not name it: %q", line)
		}
	}
	fmt.Fprintf(conn, "10 ping\n")
	if got := readUntil("1 10 :"); got != `1 10 : text=Pong.` {
		t.Errorf("ping after garbage: %q", got)
	}
}

func TestHelpPingVersion(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	res := send(t, c, "help")
	if res.final.Code != opscore.Done {
		t.Fatalf("help: %q", res.lines())
	}
	// One line per command, as click lists a group's commands.
	for _, def := range commandTable {
		want := fmt.Sprintf(`w help="  %-10s  %s"`, def.name, def.help) // get_schema is the longest name
		if !res.hasLine(want) {
			t.Errorf("help lacks %s", want)
		}
	}
	if !res.hasLine(`w help="Usage: fliswarm [OPTIONS] COMMAND [ARGS]..."`) {
		t.Errorf("help lacks the usage line: %q", res.lines())
	}

	talkUsage := []string{
		`w help="Usage: fliswarm talk [OPTIONS] CAMERA-COMMAND..."`,
		`w help=""`,
		`w help="  Sends a command to selected or all cameras."`,
		`w help=""`,
		`w help="Options:"`,
		`w help="  -c, --category CATEGORY   Comma-separated CATEGORY of nodes to command."`,
		`w help="      --help                Show this message and exit."`,
		`w help="  -n, --names NAMES         Comma-separated NAMES of the nodes to command."`,
	}
	for _, body := range []string{"help talk", "talk --help"} {
		res := send(t, c, body)
		if res.final.Code != opscore.Done {
			t.Errorf("%s ended %q", body, res.final.Line)
		}
		got := res.lines()[1 : len(res.lines())-1]
		if diff := cmp.Diff(talkUsage, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", body, diff)
		}
	}
	// A usage error prints the usage, then fails.
	res = send(t, c, "reconnect --bogus")
	if res.final.Code != opscore.Failed || !res.hasLine(`w help="Usage: fliswarm reconnect [OPTIONS]"`) ||
		!res.hasLine(`w help="  -f, --force               Remove and recreate the volumes that exist."`) {
		t.Errorf("usage error: %q", res.lines())
	}
	if v, _ := kwValues(res.final, "error"); len(v) != 2 || v[0] != "fliswarm" || !strings.Contains(v[1], "bogus") {
		t.Errorf("usage error final %q", res.final.Line)
	}
	if res := send(t, c, "help nope"); res.final.Code != opscore.Failed {
		t.Errorf("help of an unknown command ended %q", res.final.Line)
	}

	if got := send(t, c, "ping").final.Line; !strings.HasSuffix(got, ` : text=Pong.`) {
		t.Errorf("ping: %q", got)
	}
	if got := send(t, c, "version").final.Line; !strings.HasSuffix(got, ` : version="test-1.0"`) {
		t.Errorf("version: %q", got)
	}
}

func TestPeriodicStatusAndDeviceBroadcasts(t *testing.T) {
	h := newHarness(t, harnessConfig{
		spec:      func(s *v1.Swarm) { s.StatusInterval = v1.Seconds(0.2) },
		camConfig: camsim.Config{StatusInterval: 100 * time.Millisecond},
	})
	var mu sync.Mutex
	var lines []string
	h.dial(opscore.WithUnsolicited(func(r opscore.Reply) {
		mu.Lock()
		lines = append(lines, r.Line)
		mu.Unlock()
	}))
	waitUntil(t, "broadcast status and camera status", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var enabled, done, cam bool
		for _, l := range lines {
			enabled = enabled || l == "0 0 i enabledNodes=gfa1,gfa2,fvc"
			done = done || l == "0 0 : "
			cam = cam || strings.HasPrefix(l, "0 0 i status=gfa1,gfa1n,")
		}
		return enabled && done && cam
	})
}

func TestContainerStartedKicks(t *testing.T) {
	h := newHarness(t, harnessConfig{devices: func(o *device.Options) {
		*o = device.Options{InitialBackoff: 10 * time.Minute, MaxBackoff: 10 * time.Minute}
	}})
	h.cams["gfa1"].stop()
	h.waitDevice("gfa1", false)
	h.cams["gfa1"].listen(t, h.cams["gfa1"].addr)
	h.actor.cams.ContainerStarted("gfa1")
	h.waitDevice("gfa1", true) // long before the 10-minute backoff
}

func TestSetSpec(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	moved := startCamera(t, "gfa1", "127.0.0.1:0", camsim.Config{DataDir: h.dataDir})
	spec, _ := h.rec.Spec()
	next := *spec
	next.Nodes = maps.Clone(spec.Nodes)
	n := next.Nodes["gfa1"]
	n.Port = moved.port(t)
	next.Nodes["gfa1"] = n
	next.EnabledNodes = []string{"gfa1", "gfa2"}
	h.rec.setSpec(&next)

	waitUntil(t, "fvc's client stopped after fvc left enabled_nodes", func() bool {
		return h.actor.device("fvc") == nil && !h.rec.deviceConnected("fvc")
	})
	waitUntil(t, "gfa1 on its new address", func() bool {
		c := h.actor.device("gfa1")
		return c != nil && c.Addr() == moved.addr && c.Connected()
	})
	h.cams["gfa1"].stop() // the old camera is gone: the new one answers
	c := h.dial()
	if res := send(t, c, "talk -n gfa1 ping"); res.final.Code != opscore.Done {
		t.Errorf("talk to the moved camera: %q", res.lines())
	}
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rec := newFakeReconciler(testSpec(map[string]int{}))
	a := New(Options{Reconciler: rec, Cameras: NewCameras(CamerasOptions{Store: rec}), Addr: ln.Addr().String()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = a.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
	if a.Addr() != nil {
		t.Errorf("Addr after a failed Start: %v", a.Addr())
	}
}

func TestSimulate(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	dir := t.TempDir()
	for _, f := range []string{"a.fits", "b.fits"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c1, c2 := h.dial(), h.dial()
	if res := send(t, c2, "simulate --stop"); res.final.Code != opscore.Failed {
		t.Errorf("stop without a simulation: %q", res.final.Line)
	}
	if res := send(t, c2, "simulate "+filepath.Join(dir, "*.none")); res.final.Code != opscore.Failed {
		t.Errorf("no images: %q", res.final.Line)
	}

	var mu sync.Mutex
	var files []string
	done := make(chan opscore.Reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
		defer cancel()
		r, err := c1.Send(ctx, "simulate "+filepath.Join(dir, "*.fits")+" --delay 0.05", func(r opscore.Reply) {
			if v, ok := kwValues(r, "filename"); ok {
				mu.Lock()
				files = append(files, strings.Join(v, ","))
				mu.Unlock()
			}
		})
		if err != nil {
			t.Errorf("simulate: %v", err)
		}
		done <- r
	}()
	waitUntil(t, "two rounds of filenames", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(files) >= 6
	})
	if res := send(t, c2, "simulate "+filepath.Join(dir, "*.fits")); res.final.Code != opscore.Failed {
		t.Errorf("a second simulation: %q", res.final.Line)
	}
	res := send(t, c2, "simulate --stop")
	if res.final.Code != opscore.Done || !res.hasLine(`: text="Command has been stopped."`) {
		t.Errorf("stop: %q", res.lines())
	}
	final := <-done
	if final.Code != opscore.Failed || !strings.Contains(final.Line, "cancelled") {
		t.Errorf("the stopped simulation ended %q", final.Line)
	}
	mu.Lock()
	defer mu.Unlock()
	a, b := filepath.Join(dir, "a.fits"), filepath.Join(dir, "b.fits")
	want := []string{"gfa1,gfa1," + a, "gfa2,gfa2," + b, "fvc,fvc," + a, "gfa1,gfa1," + b, "gfa2,gfa2," + a, "fvc,fvc," + b}
	if diff := cmp.Diff(want, files[:6]); diff != "" {
		t.Errorf("filenames (-want +got):\n%s", diff)
	}
}
