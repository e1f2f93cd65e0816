package actor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/camsim"
)

// The relay benchmark runs on loopback and needs no test bed: the
// simulated cameras run in a child process (this test binary re-executed
// as TestCamsimHelperProcess), so that the CPU time and the heap this
// process measures are the actor's (plus a reading client that only counts
// newlines).
//
//	go test -run '^$' -bench Relay -benchtime 1x ./pkg/actor/
//	FLISWARM_BENCH_FLOOD=1000000 go test -run '^$' -bench Relay -benchtime 1x ./pkg/actor/
//
// Environment: FLISWARM_BENCH_PINGS (round trips, default 1000),
// FLISWARM_BENCH_FLOOD (lines, default 200000).

const camsimHelperEnv = "FLISWARM_CAMSIM_HELPER"

// TestCamsimHelperProcess is not a test: re-executed by the relay
// benchmark with FLISWARM_CAMSIM_HELPER=<node,node,...>, it serves one
// simulated camera per node on 127.0.0.1, prints "<node> <addr>" per
// camera, then "ready", and serves until its stdin closes.
func TestCamsimHelperProcess(t *testing.T) {
	names := os.Getenv(camsimHelperEnv)
	if names == "" {
		t.Skip("helper process for BenchmarkRelay")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "fliswarm-bench-")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	for _, n := range strings.Split(names, ",") {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		srv := camsim.New(camsim.Config{Name: n, DataDir: dir, Width: 64, Height: 64})
		go func() { _ = srv.Serve(ctx, ln) }()
		fmt.Println(n, ln.Addr().String())
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// startCamsimProcess starts the helper process and returns each node's
// camera address.
func startCamsimProcess(tb testing.TB, names []string) map[string]string {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCamsimHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), camsimHelperEnv+"="+strings.Join(names, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addrs := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "ready":
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return addrs
		case len(f) == 2 && slices.Contains(names, f[0]):
			addrs[f[0]] = f[1]
		case len(f) > 0 && f[0] == "error":
			tb.Fatalf("camera helper: %s", sc.Text())
		}
	}
	tb.Fatalf("camera helper ended before it was ready: %v", sc.Err())
	return nil
}

// benchActor starts an actor on 127.0.0.1 whose nodes are the helper's
// cameras, and waits until every camera is connected.
func benchActor(tb testing.TB, ctx context.Context, cams map[string]string) (*Actor, func() error) {
	tb.Helper()
	ports := map[string]int{}
	for n, addr := range cams {
		_, p, _ := net.SplitHostPort(addr)
		ports[n], _ = strconv.Atoi(p)
	}
	spec := testSpec(ports)
	rec := newFakeReconciler(spec)
	rec.status = cannedStatus(spec)
	a, _, wait := startActor(tb, ctx, rec, Options{Version: "bench", Addr: "127.0.0.1:0"}, device.Options{}, "")
	deadline := time.Now().Add(waitFor)
	for _, n := range nodeNames {
		for {
			if c := a.device(n); c != nil && c.Connected() {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("camera %s not connected", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return a, wait
}

func benchEnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// BenchmarkRelay measures, in one run: (1) the latency `talk -n gfa1 ping`
// adds through the actor over `ping` sent straight to the camera, median
// and p99 of interleaved round trips; (2) a `talk -n gfa1 sim-flood N`
// relayed to one client reading as fast as it can: lines per second, this
// process's CPU time per line (getrusage) and its heap before, at the peak
// and after the flood.
func BenchmarkRelay(b *testing.B) {
	pings := benchEnvInt("FLISWARM_BENCH_PINGS", 1000)
	flood := benchEnvInt("FLISWARM_BENCH_FLOOD", 200_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cams := startCamsimProcess(b, nodeNames)
	a, wait := benchActor(b, ctx, cams)
	defer func() { cancel(); _ = wait() }()
	b.ResetTimer()
	for range b.N {
		benchLatency(b, ctx, a, cams["gfa1"], pings)
		benchFlood(b, a, flood)
	}
}

// benchLatency interleaves round trips through the actor and straight to
// the camera.
func benchLatency(b *testing.B, ctx context.Context, a *Actor, camAddr string, n int) {
	// Both paths are timed the same way, as a hub sees them: a line
	// written, replies read on the same goroutine until the terminal one.
	user, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer user.Close()
	urd := bufio.NewReader(user)
	through := func(id int) error {
		final, err := opscore.Exchange(user, urd, id, "talk -n gfa1 ping")
		if err == nil && final.Code != opscore.Done {
			err = fmt.Errorf("talk ping: %s", final.Line)
		}
		return err
	}
	cam, err := net.Dial("tcp", camAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer cam.Close()
	rd := bufio.NewReader(cam)
	direct := func(id int) error {
		if _, err := cam.Write(clu.FormatCommand(id, "ping")); err != nil {
			return err
		}
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				return err
			}
			r, err := clu.ParseReply(line)
			if err == nil && r.Header.CommandID == id && clu.IsTerminal(r.Header.MessageCode) {
				return nil
			}
		}
	}
	// Warm up both paths.
	for i := range 50 {
		if err := through(i + 1); err != nil {
			b.Fatal(err)
		}
		if err := direct(i + 1); err != nil {
			b.Fatal(err)
		}
	}
	ours := make([]time.Duration, 0, n)
	base := make([]time.Duration, 0, n)
	cpu0 := cpuTime()
	for i := range n {
		start := time.Now()
		if err := through(i%1000 + 1); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		if err := direct(i%1000 + 1); err != nil {
			b.Fatal(err)
		}
		base = append(base, time.Since(start))
	}
	// This process's CPU per pair of round trips (one through the actor,
	// one direct; both clients included): less at the mercy of a busy
	// machine than the latencies.
	cpuPerPair := float64((cpuTime() - cpu0).Nanoseconds()) / 1000 / float64(n)
	slices.Sort(ours)
	slices.Sort(base)
	q := func(s []time.Duration, p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	b.ReportMetric(us(q(ours, 0.5)), "talk-median-µs")
	b.ReportMetric(us(q(ours, 0.99)), "talk-p99-µs")
	b.ReportMetric(us(q(base, 0.5)), "direct-median-µs")
	b.ReportMetric(us(q(base, 0.99)), "direct-p99-µs")
	b.ReportMetric(us(q(ours, 0.5)-q(base, 0.5)), "added-median-µs")
	b.ReportMetric(us(q(ours, 0.99)-q(base, 0.99)), "added-p99-µs")
	b.ReportMetric(cpuPerPair, "latency-cpu-µs/pair")
	b.Logf("latency over %d round trips: through the actor median %v p99 %v; direct median %v p99 %v; added median %v p99 %v; %.1f µs CPU per pair",
		n, q(ours, 0.5), q(ours, 0.99), q(base, 0.5), q(base, 0.99), q(ours, 0.5)-q(base, 0.5), q(ours, 0.99)-q(base, 0.99), cpuPerPair)
}

// heapBytes is the live heap (objects) now, cheap enough to sample.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchFlood relays a flood to one raw client that counts lines.
func benchFlood(b *testing.B, a *Actor, n int) {
	conn, err := net.Dial("tcp", a.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 256<<10)
	runtime.GC()
	heapBefore := heapBytes()
	var peak atomic.Uint64
	peak.Store(heapBefore)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				if h := heapBytes(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()

	cpu0 := cpuTime()
	start := time.Now()
	if _, err := fmt.Fprintf(conn, "1 talk -n gfa1 sim-flood %d\n", n); err != nil {
		b.Fatal(err)
	}
	floodMark := []byte(`text=gfa1,"flood `)
	lines := 0
	final, err := opscore.ReadReplies(br, 1, func(line []byte) {
		if bytes.Contains(line, floodMark) {
			lines++
		}
	})
	if err != nil || final.Code != opscore.Done {
		b.Fatalf("flood ended after %d lines: %v %s", lines, err, final.Line)
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	close(stopSampling)
	<-sampled
	if lines != n {
		b.Errorf("received %d flood lines, want %d", lines, n)
	}
	runtime.GC()
	time.Sleep(100 * time.Millisecond) // let the writer goroutines settle
	runtime.GC()
	heapAfter := heapBytes()

	rate := float64(lines) / elapsed.Seconds()
	cpuPerLine := float64(cpu.Nanoseconds()) / 1000 / float64(max(lines, 1))
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(rate, "flood-lines/s")
	b.ReportMetric(cpuPerLine, "flood-cpu-µs/line")
	b.ReportMetric(mib(heapBefore), "heap-before-MiB")
	b.ReportMetric(mib(peak.Load()), "heap-peak-MiB")
	b.ReportMetric(mib(heapAfter), "heap-after-MiB")
	b.Logf("flood of %d lines: %.0f lines/s, %.2f µs CPU per line (%v CPU over %v), heap before %.1f MiB, peak %.1f MiB, after %.1f MiB",
		lines, rate, cpuPerLine, cpu.Round(time.Millisecond), elapsed.Round(time.Millisecond),
		mib(heapBefore), mib(peak.Load()), mib(heapAfter))
}
