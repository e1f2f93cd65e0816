package camsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/test/fits"
)

// timeout bounds every wait in these tests; it is generous on purpose.
const timeout = 20 * time.Second

// fixedNow is the clock of the tests: MJD 60676.
var fixedNow = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func testConfig(t *testing.T) Config {
	return Config{
		Name:          "gfa1",
		DataDir:       t.TempDir(),
		ExposureScale: 0.001,
		Width:         64,
		Height:        48,
		Now:           func() time.Time { return fixedNow },
	}
}

// served is the outcome of Serve: err is set once done is closed.
type served struct {
	done chan struct{}
	err  error
}

// start runs a server on a loopback port and returns its address and what
// Serve returns. The cleanup stops the server and fails the test if Serve
// does not return (a leaked goroutine).
func start(t *testing.T, cfg Config) (string, *served) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	res := &served{done: make(chan struct{})}
	go func() {
		res.err = srv.Serve(ctx, ln)
		close(res.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-res.done:
		case <-time.After(timeout):
			t.Error("Serve did not return after its context was cancelled")
		}
	})
	return ln.Addr().String(), res
}

type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

// dial connects and consumes the camera-connected broadcast.
func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	hello := c.next()
	if hello.Header.CommandID != 0 || hello.Header.MessageCode != "i" {
		t.Fatalf("first message = %+v, want an id 0 info broadcast", hello)
	}
	if text, _ := hello.Data.Get("text"); text != "Camera gfa1n connected." {
		t.Fatalf("first message text = %v", text)
	}
	return c
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatal(err)
	}
}

// next reads one reply; every line must be a valid reply.
func (c *client) next() clu.Reply {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	r, err := clu.ParseReply(line)
	if err != nil {
		c.t.Fatalf("bad reply line %q: %v", line, err)
	}
	if r.Header.Sender != "gfa1" || r.Header.CommanderID == "" {
		c.t.Fatalf("bad header %+v", r.Header)
	}
	return r
}

// run sends a command and returns its replies, from ">" to the terminal
// one, skipping replies of other commands.
func (c *client) run(id int, cmd string) []clu.Reply {
	c.t.Helper()
	c.send(fmt.Sprintf("%d %s", id, cmd))
	return c.until(id)
}

func (c *client) until(id int) []clu.Reply {
	c.t.Helper()
	var out []clu.Reply
	for {
		r := c.next()
		if r.Header.CommandID != id {
			continue
		}
		out = append(out, r)
		if clu.IsTerminal(r.Header.MessageCode) {
			checkLifecycle(c.t, out)
			return out
		}
	}
}

// checkLifecycle checks the shape every command's replies must have.
func checkLifecycle(t *testing.T, rs []clu.Reply) {
	t.Helper()
	if len(rs) < 2 {
		t.Fatalf("got %d replies, want at least > and a terminal one", len(rs))
	}
	first := rs[0]
	if first.Header.MessageCode != ">" || !first.Header.Internal || len(first.Data) != 0 {
		t.Fatalf("first reply = %+v, want > internal with no data", first)
	}
	for _, r := range rs[1 : len(rs)-1] {
		if clu.IsTerminal(r.Header.MessageCode) || r.Header.MessageCode == ">" {
			t.Fatalf("unexpected %q in the middle of a command", r.Header.MessageCode)
		}
	}
}

func codes(rs []clu.Reply) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Header.MessageCode)
	}
	return b.String()
}

func field(t *testing.T, v any, key string) any {
	t.Helper()
	o, ok := v.(clu.Object)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	x, ok := o.Get(key)
	if !ok {
		t.Fatalf("%v has no %q", v, key)
	}
	return x
}

func keys(o clu.Object) []string {
	var k []string
	for _, f := range o {
		k = append(k, f.Key)
	}
	return k
}

func TestCameraName(t *testing.T) {
	for _, tc := range []struct{ actor, obs, want string }{
		{"gfa1", "APO", "gfa1n"},
		{"gfa6", "LCO", "gfa6s"},
		{"gfa2", "lco", "gfa2s"},
		{"fvc", "APO", "fvc1n"},
		{"fvc", "LCO", "fvc1s"},
		{"flicamera", "", "flicameran"},
	} {
		if got := CameraName(tc.actor, tc.obs); got != tc.want {
			t.Errorf("CameraName(%q, %q) = %q, want %q", tc.actor, tc.obs, got, tc.want)
		}
	}
}

func TestMJD(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want int
	}{
		{time.Date(1858, 11, 17, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 40587},
		{time.Date(2000, 1, 1, 23, 59, 59, 0, time.UTC), 51544},
		{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 60676},
	} {
		if got := MJD(tc.t); got != tc.want {
			t.Errorf("MJD(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func TestStatusPingVersionHelp(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)

	rs := c.run(1, "status")
	if codes(rs) != ">i:" {
		t.Fatalf("status codes = %q", codes(rs))
	}
	st, _ := rs[1].Data.Get("status")
	list, ok := st.([]any)
	if !ok || len(list) != 19 {
		t.Fatalf("status = %v, want a list of 19 values", st)
	}
	if list[0] != "gfa1n" || list[5].(fmt.Stringer).String() != "1" || list[9].(fmt.Stringer).String() != "64" {
		t.Errorf("status = %v", list)
	}

	rs = c.run(2, "ping")
	if codes(rs) != ">:" {
		t.Fatalf("ping codes = %q", codes(rs))
	}
	if text, _ := rs[1].Data.Get("text"); text != "Pong." {
		t.Errorf("ping text = %v", text)
	}

	rs = c.run(3, "version")
	if v, _ := rs[len(rs)-1].Data.Get("version"); v != Version {
		t.Errorf("version = %v, want %s", v, Version)
	}

	rs = c.run(4, "help")
	if codes(rs) != ">i:" {
		t.Fatalf("help codes = %q", codes(rs))
	}
	h, _ := rs[1].Data.Get("help")
	lines, _ := h.([]any)
	var all []string
	for _, l := range lines {
		all = append(all, l.(string))
	}
	for _, cmd := range []string{"expose [CAMERA] EXPTIME", "status", "temperature", "binning", "sim-hang"} {
		if !strings.Contains(strings.Join(all, "\n"), cmd) {
			t.Errorf("help does not mention %q: %v", cmd, all)
		}
	}

	// A line without an id is command 0; quick commands answer in order.
	c.send("ping")
	c.send("7 ping")
	if rs := c.until(0); codes(rs) != ">:" {
		t.Errorf("id-less ping codes = %q", codes(rs))
	}
	if r := c.next(); r.Header.CommandID != 7 {
		t.Errorf("next reply is for command %d, want 7", r.Header.CommandID)
	}
}

func TestTemperatureAndBinning(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)

	rs := c.run(1, "temperature -12.5")
	if codes(rs) != ">i:" {
		t.Fatalf("temperature codes = %q (%v)", codes(rs), rs)
	}
	temp, _ := rs[1].Data.Get("temperature")
	if got := keys(temp.(clu.Object)); strings.Join(got, ",") != "camera,ccd_temp" {
		t.Errorf("temperature keys = %v", got)
	}
	if v := field(t, temp, "ccd_temp"); fmt.Sprint(v) != "-12.5" {
		t.Errorf("ccd_temp = %v, want -12.5", v)
	}
	rs = c.run(2, "temperature gfa1n")
	temp, _ = rs[1].Data.Get("temperature")
	if v := field(t, temp, "ccd_temp"); fmt.Sprint(v) != "-12.5" {
		t.Errorf("ccd_temp = %v after setting -12.5", v)
	}

	rs = c.run(3, "binning 2 4")
	b, _ := rs[1].Data.Get("binning")
	if got := fmt.Sprint(keys(b.(clu.Object)), b.(clu.Object).Values()); got != "[camera horizontal vertical] [gfa1n 2 4]" {
		t.Errorf("binning = %s", got)
	}
	rs = c.run(4, "status")
	st, _ := rs[1].Data.Get("status")
	list := st.([]any)
	if got := fmt.Sprint(list[5:11]); got != "[2 4 0 0 32 12]" {
		t.Errorf("status binning and area = %s", got)
	}
	if got := fmt.Sprint(list[15]); got != "-12.5" {
		t.Errorf("status ccd temperature = %s", got)
	}

	for i, bad := range []string{"binning 0", "binning 1 2 3", "binning 1.5", "temperature 1 2", "temperature gfa9n", "status 3"} {
		rs := c.run(10+i, bad)
		if codes(rs) != ">wf" {
			t.Errorf("%q codes = %q, want >wf", bad, codes(rs))
		}
	}
	rs = c.run(20, "temperature -100")
	if codes(rs) != ">f" {
		t.Fatalf("out-of-range setpoint codes = %q", codes(rs))
	}
	e, _ := rs[1].Data.Get("error")
	if field(t, e, "camera") != "gfa1n" {
		t.Errorf("error = %v, want {camera, error}", e)
	}
}

func TestExposeWritesFITS(t *testing.T) {
	cfg := testConfig(t)
	addr, _ := start(t, cfg)
	c := dial(t, addr)
	dir := filepath.Join(cfg.DataDir, "gcam", "60676")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Another camera's file and a foreign file do not move the sequence.
	for _, name := range []string{"gimg-gfa2n-0099.fits", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	rs := c.run(1, "expose 2 --count 2 --dark")
	if got := codes(rs); got != ">iiiiiiii:" {
		t.Fatalf("expose codes = %q", got)
	}
	var states, files []string
	for _, r := range rs[1 : len(rs)-1] {
		if es, ok := r.Data.Get("exposure_state"); ok {
			o := es.(clu.Object)
			if strings.Join(keys(o), ",") != "camera,state,image_type,exposure_time,remaining_time,current_stack,n_stack,error" {
				t.Fatalf("exposure_state keys = %v", keys(o))
			}
			states = append(states, fmt.Sprint(field(t, o, "state"), "/", field(t, o, "current_stack"), "/", field(t, o, "n_stack")))
			if field(t, o, "image_type") != "dark" || fmt.Sprint(field(t, o, "exposure_time")) != "2" {
				t.Errorf("exposure_state = %v", o)
			}
		}
		if fn, ok := r.Data.Get("filename"); ok {
			if strings.Join(keys(fn.(clu.Object)), ",") != "camera,filename" || field(t, fn, "camera") != "gfa1n" {
				t.Fatalf("filename = %v", fn)
			}
			files = append(files, field(t, fn, "filename").(string))
		}
	}
	wantStates := "[integrating/1/2 reading/1/2 done/1/2 integrating/2/2 reading/2/2 done/2/2]"
	if fmt.Sprint(states) != wantStates {
		t.Errorf("states = %v, want %s", states, wantStates)
	}
	wantFiles := []string{filepath.Join(dir, "gimg-gfa1n-0001.fits"), filepath.Join(dir, "gimg-gfa1n-0002.fits")}
	if fmt.Sprint(files) != fmt.Sprint(wantFiles) {
		t.Fatalf("files = %v, want %v", files, wantFiles)
	}
	for _, f := range files {
		checkFITS(t, f, 64, 48, "dark", 2)
	}

	// An explicit name, a bias, then numbering goes on after the highest.
	rs = c.run(2, "expose gfa1n --bias --filename custom.fits")
	if codes(rs) != ">iiii:" {
		t.Fatalf("bias codes = %q", codes(rs))
	}
	checkFITS(t, filepath.Join(dir, "custom.fits"), 64, 48, "bias", 0)
	if err := os.WriteFile(filepath.Join(dir, "gimg-gfa1n-0041.fits"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.run(3, "binning 2")
	rs = c.run(4, "expose 0.5 --flat")
	fn, _ := rs[len(rs)-2].Data.Get("filename")
	if got := field(t, fn, "filename"); got != filepath.Join(dir, "gimg-gfa1n-0042.fits") {
		t.Errorf("next file = %v, want number 0042", got)
	}
	checkFITS(t, filepath.Join(dir, "gimg-gfa1n-0042.fits"), 32, 24, "flat", 0.5)

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func checkFITS(t *testing.T, path string, w, h int, imageType string, exptime float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	if info.Size()%fits.BlockSize != 0 {
		t.Errorf("%s: size %d is not a multiple of %d", path, info.Size(), fits.BlockSize)
	}
	im, err := fits.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if im.Width != w || im.Height != h {
		t.Errorf("%s: %dx%d, want %dx%d", path, im.Width, im.Height, w, h)
	}
	want := map[string]any{"CAMNAME": "gfa1n", "IMAGETYP": imageType, "EXPTIME": exptime,
		"OBSERVAT": "APO", "DATE-OBS": "2025-01-01T12:00:00.000"}
	for k, v := range want {
		c, ok := im.Card(k)
		if !ok || c.Value != v {
			t.Errorf("%s: %s = %v (%T), want %v", path, k, c.Value, c.Value, v)
		}
	}
	var lo, hi uint16 = 65535, 0
	for _, p := range im.Pixels {
		lo, hi = min(lo, p), max(hi, p)
	}
	if lo < biasLevel-10 || lo == hi {
		t.Errorf("%s: pixel range [%d, %d] does not look like a bias-level image with noise", path, lo, hi)
	}
}

func TestExposeBadArguments(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)
	for i, cmd := range []string{
		"expose", "expose -1", "expose abc", "expose 1 2", "expose 1 --count 0", "expose 1 --count x",
		"expose 1 --flat --dark", "expose 1 --filename a/b.fits", "expose 1 --filename ../x",
		"expose 1 --filename x.fits --count 2", "expose 1 --nope", "expose gfa2n 1", "expose 99999",
		"expose 1 --count -5",
	} {
		rs := c.run(i+1, cmd)
		if codes(rs) != ">wf" {
			t.Errorf("%q codes = %q, want >wf", cmd, codes(rs))
			continue
		}
		if _, ok := rs[1].Data.Get("help"); !ok {
			t.Errorf("%q warning has no help: %v", cmd, rs[1].Data)
		}
		if e, _ := rs[2].Data.Get("error"); e == "" || e == nil || strings.Contains(fmt.Sprint(e), "\x00") {
			t.Errorf("%q error = %q", cmd, e)
		}
	}
}

func TestUnknownAndGarbage(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)

	rs := c.run(5, "frobnicate now")
	if codes(rs) != ">f" {
		t.Fatalf("unknown command codes = %q", codes(rs))
	}
	if e, _ := rs[1].Data.Get("error"); !strings.Contains(fmt.Sprint(e), "frobnicate") {
		t.Errorf("error = %v", e)
	}

	// Empty and blank lines get no answer at all; binary gets a failure.
	c.send("")
	c.send("   \t")
	c.send("\x00\xff\xfe garbage \x01")
	if rs := c.until(0); codes(rs) != ">f" {
		t.Errorf("binary line codes = %q", codes(rs))
	}
	c.send("8")
	if rs := c.until(8); codes(rs) != ">f" {
		t.Errorf("id without command codes = %q", codes(rs))
	}

	// A line over the limit is discarded with a failure; the
	// connection goes on.
	c.send("9 ping " + strings.Repeat("x", MaxLineLength*2))
	rs = c.until(9)
	if codes(rs) != ">f" {
		t.Fatalf("long line codes = %q", codes(rs))
	}
	if e, _ := rs[1].Data.Get("error"); !strings.Contains(fmt.Sprint(e), "longer") {
		t.Errorf("long line error = %v", e)
	}
	if rs := c.run(10, "ping"); codes(rs) != ">:" {
		t.Errorf("ping after garbage codes = %q", codes(rs))
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, tc := range []struct {
		in      string
		lines   []string
		tooLong []bool
	}{
		{"a\nb\r\n\n", []string{"a", "b", ""}, []bool{false, false, false}},
		{"last", []string{"last"}, []bool{false}},
		{long + "\nok\n", []string{long[:50], "ok"}, []bool{true, false}},
		{long, []string{long[:50]}, []bool{true}},
	} {
		r := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		var lines []string
		var tl []bool
		for {
			l, too, err := readLine(r, 50)
			if err != nil {
				break
			}
			lines, tl = append(lines, l), append(tl, too)
		}
		if fmt.Sprint(lines, tl) != fmt.Sprint(tc.lines, tc.tooLong) {
			t.Errorf("readLine(%q) = %q %v, want %q %v", tc.in, lines, tl, tc.lines, tc.tooLong)
		}
	}
}

func TestLongExposeDoesNotBlockPing(t *testing.T) {
	cfg := testConfig(t)
	cfg.ExposureScale = 1 // 60 s: it never ends within the test
	addr, _ := start(t, cfg)
	c := dial(t, addr)

	c.send("1 expose 60")
	var sawIntegrating bool
	c.send("2 ping")
	for {
		r := c.next()
		if r.Header.CommandID == 1 {
			if clu.IsTerminal(r.Header.MessageCode) {
				t.Fatalf("expose ended before ping: %+v", r)
			}
			if es, ok := r.Data.Get("exposure_state"); ok && field(t, es, "state") == "integrating" {
				sawIntegrating = true
			}
		}
		if r.Header.CommandID == 2 && r.Header.MessageCode == ":" {
			break
		}
	}
	if !sawIntegrating {
		// The ">" of expose is written before ping is read; its
		// integrating state may come after the ping, so wait for it.
		for {
			r := c.next()
			if es, ok := r.Data.Get("exposure_state"); ok && field(t, es, "state") == "integrating" {
				break
			}
		}
	}
	rs := c.run(3, "status")
	st, _ := rs[1].Data.Get("status")
	if left := st.([]any)[17]; fmt.Sprint(left) == "0" {
		t.Errorf("exposure time left = %v during a 60 s exposure", left)
	}
	// A second exposure fails: the camera is busy.
	rs = c.run(4, "expose 1")
	if codes(rs) != ">f" {
		t.Fatalf("second expose codes = %q", codes(rs))
	}
	e, _ := rs[1].Data.Get("error")
	if !strings.Contains(fmt.Sprint(field(t, e, "error")), "already exposing") {
		t.Errorf("error = %v", e)
	}
}

func TestDisconnectMidExpose(t *testing.T) {
	cfg := testConfig(t)
	cfg.ExposureScale = 1
	addr, _ := start(t, cfg)
	c := dial(t, addr)
	c.send("1 expose 600")
	for {
		r := c.next()
		if _, ok := r.Data.Get("exposure_state"); ok {
			break
		}
	}
	c.conn.Close()

	// The camera becomes free again: the exposure was aborted.
	other := dial(t, addr)
	deadline := time.Now().Add(timeout)
	for id := 1; ; id++ {
		rs := other.run(id, "binning 1")
		if codes(rs) == ">i:" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("camera still busy after its client disconnected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	entries, _ := os.ReadDir(filepath.Join(cfg.DataDir, "gcam", "60676"))
	if len(entries) != 0 {
		t.Errorf("aborted exposure left files: %v", entries)
	}
}

func TestManyClients(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			conn, err := net.DialTimeout("tcp", addr, timeout)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(timeout))
			fmt.Fprintf(conn, "1 status\n2 ping\n3 sim-flood 50\n4 binning\n")
			sc := bufio.NewScanner(conn)
			done := map[int]string{}
			seen := map[string]bool{}
			for len(done) < 4 && sc.Scan() {
				r, err := clu.ParseReply(sc.Bytes())
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
				seen[r.Header.CommanderID] = true
				if clu.IsTerminal(r.Header.MessageCode) {
					done[r.Header.CommandID] = r.Header.MessageCode
				}
			}
			if fmt.Sprint(done) != "map[1:: 2:: 3:: 4::]" {
				errs <- fmt.Errorf("client %d: terminal replies %v (scan error %v)", i, done, sc.Err())
			}
			if len(seen) != 1 {
				errs <- fmt.Errorf("client %d: commander ids %v, want one", i, seen)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFlood(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)
	const n = 5000
	rs := c.run(1, fmt.Sprintf("sim-flood %d", n))
	if len(rs) != n+2 || rs[len(rs)-1].Header.MessageCode != ":" {
		t.Fatalf("got %d replies ending in %q, want %d ending in :", len(rs), rs[len(rs)-1].Header.MessageCode, n+2)
	}
	for k, r := range rs[1 : n+1] {
		if text, _ := r.Data.Get("text"); text != fmt.Sprintf("flood %d", k+1) || r.Header.MessageCode != "i" {
			t.Fatalf("reply %d = %v %v", k+1, r.Header.MessageCode, r.Data)
		}
	}
	for i, bad := range []string{"sim-flood", "sim-flood -1", "sim-flood x", "sim-flood 1 2"} {
		if rs := c.run(10+i, bad); codes(rs) != ">wf" {
			t.Errorf("%q codes = %q", bad, codes(rs))
		}
	}
}

func TestHang(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)
	c.send("1 sim-hang")
	if r := c.next(); r.Header.CommandID != 1 || r.Header.MessageCode != ">" {
		t.Fatalf("sim-hang first reply = %+v", r.Header)
	}
	// Later commands still run, and nothing more comes for the hung one.
	for id := 2; id < 5; id++ {
		if rs := c.run(id, "ping"); codes(rs) != ">:" {
			t.Fatalf("ping during sim-hang codes = %q", codes(rs))
		}
	}
	c.send("9 status")
	for {
		r := c.next()
		if r.Header.CommandID == 1 {
			t.Fatalf("hung command replied: %+v", r)
		}
		if r.Header.CommandID == 9 && clu.IsTerminal(r.Header.MessageCode) {
			break
		}
	}
	// The cleanup checks that Serve still returns with the command hung.
}

func TestExit(t *testing.T) {
	addr, res := start(t, testConfig(t))
	c := dial(t, addr)
	rs := c.run(1, "sim-exit 3")
	if codes(rs) != ">:" {
		t.Fatalf("sim-exit codes = %q", codes(rs))
	}
	select {
	case <-res.done:
		var exit *ExitError
		if !errors.As(res.err, &exit) || exit.Code != 3 {
			t.Fatalf("Serve returned %v, want ExitError with code 3", res.err)
		}
	case <-time.After(timeout):
		t.Fatal("Serve did not return after sim-exit")
	}
}

func TestExitBadArgument(t *testing.T) {
	addr, _ := start(t, testConfig(t))
	c := dial(t, addr)
	if rs := c.run(1, "sim-exit 256"); codes(rs) != ">wf" {
		t.Fatalf("sim-exit 256 codes = %q", codes(rs))
	}
}

func TestStatusBroadcast(t *testing.T) {
	cfg := testConfig(t)
	cfg.StatusInterval = 20 * time.Millisecond
	addr, _ := start(t, cfg)
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []*client{a, b} {
		for {
			r := c.next()
			if st, ok := r.Data.Get("status"); ok {
				if r.Header.CommandID != 0 || r.Header.MessageCode != "i" || st.([]any)[0] != "gfa1n" {
					t.Fatalf("broadcast = %+v", r)
				}
				break
			}
		}
	}
}
