package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// benchTalkPing interleaves `talk -n <cam> ping` through the daemon with
// `ping` straight to the camera. Both are timed the same way, as a hub
// would see them: one connection each, the line written and replies read
// on the same goroutine until the command's terminal reply.
func benchTalkPing(b *testing.B, tab *table, f *fleet, cam logical, n int) {
	actor, err := net.DialTimeout("tcp", f.e.actor, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer actor.Close()
	ard := bufio.NewReader(actor)
	conn, err := net.DialTimeout("tcp", cam.addr(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	direct := func(id int) {
		if _, err := conn.Write(clu.FormatCommand(id, "ping")); err != nil {
			b.Fatal(err)
		}
		for {
			line, err := rd.ReadBytes('\n')
			if err != nil {
				b.Fatal(err)
			}
			r, err := clu.ParseReply(line)
			if err == nil && r.Header.CommandID == id && clu.IsTerminal(r.Header.MessageCode) {
				return
			}
		}
	}
	through := func(id int) {
		final, err := opscore.Exchange(actor, ard, id, "talk -n "+cam.name+" ping")
		if err != nil || final.Code != opscore.Done {
			b.Fatalf("talk ping: %v %s", err, final.Line)
		}
	}
	for i := range 50 { // warm up both paths
		through(i + 1)
		direct(i + 1)
	}
	var ours, base []time.Duration
	for i := range n {
		start := time.Now()
		through(i%1000 + 1)
		ours = append(ours, time.Since(start))
		start = time.Now()
		direct(i%1000 + 1)
		base = append(base, time.Since(start))
	}
	added := median(ours) - median(base)
	tab.set("talk-ping", row{ours: fd(added) + " added (" + fd(median(ours)) + ")",
		tail: fmt.Sprintf("p99 %s added (%s)", fd(quantile(ours, 0.99)-quantile(base, 0.99)), fd(quantile(ours, 0.99))),
		base: fmt.Sprintf("direct: %s, p99 %s", fd(median(base)), fd(quantile(base, 0.99))), ratio: ratio(median(ours), median(base)),
		goal: "≤ 0.1 ms added (median)", met: yes(added <= 100*time.Microsecond)})
}

// benchFanout: `talk status` to every camera of a fleet against `status`
// sent straight to each camera at once (the slowest of them).
func benchFanout(b *testing.B, tab *table, key string, f *fleet, samples int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := opscore.Dial(ctx, f.e.actor)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var ours, base []time.Duration
	for i := 0; i < samples; i++ {
		start := time.Now()
		final, err := c.Send(ctx, "talk status", nil)
		if err != nil || final.Code != opscore.Done {
			b.Fatalf("talk status: %v %s", err, final.Line)
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		errs := make(chan error, len(f.cams))
		for _, cam := range f.cams {
			go func() { errs <- cluCommand(cam.addr(), "status", 30*time.Second) }()
		}
		for range f.cams {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		base = append(base, time.Since(start))
	}
	tab.set(key, row{ours: fd(median(ours)), tail: "p95 " + fd(quantile(ours, 0.95)),
		base: fmt.Sprintf("%s (p95 %s)", fd(median(base)), fd(quantile(base, 0.95))), ratio: ratio(median(ours), median(base))})
}

// benchFlood relays `talk -n <cam> sim-flood N` to one raw client reading
// as fast as it can, against the same flood read straight from the
// camera; the daemon's CPU and RSS come from /proc. It returns a function
// that samples the RSS again later (Go's runtime forces a collection of
// an idle heap only every 2 minutes, and returns memory to the system
// after it): call it a few minutes on.
func benchFlood(b *testing.B, tab *table, f *fleet, cam logical, n int) (later func()) {
	// Baseline: straight from the camera.
	direct := func() time.Duration {
		conn, err := net.DialTimeout("tcp", cam.addr(), 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReaderSize(conn, 256<<10)
		start := time.Now()
		fmt.Fprintf(conn, "1 sim-flood %d\n", n)
		lines := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatalf("direct flood after %d lines: %v", lines, err)
			}
			if bytes.Contains(line, []byte(`"flood `)) {
				lines++
				continue
			}
			if r, err := clu.ParseReply(line); err == nil && r.Header.CommandID == 1 && clu.IsTerminal(r.Header.MessageCode) {
				break
			}
		}
		if lines != n {
			b.Fatalf("direct flood: %d lines, want %d", lines, n)
		}
		return time.Since(start)
	}
	baseDur := direct()

	conn, err := net.Dial("tcp", f.e.actor)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 256<<10)
	time.Sleep(2 * time.Second)
	rssBefore := procRSS(f.pid)
	var peak atomic.Int64
	peak.Store(rssBefore)
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if r := procRSS(f.pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	cpu0 := procCPU(f.pid)
	start := time.Now()
	fmt.Fprintf(conn, "1 talk -n %s sim-flood %d\n", cam.name, n)
	mark := []byte(`,"flood `)
	lines := 0
	final, err := opscore.ReadReplies(br, 1, func(line []byte) {
		if bytes.Contains(line, mark) {
			lines++
		}
	})
	if err != nil || final.Code != opscore.Done {
		b.Fatalf("flood ended after %d lines: %v %s", lines, err, final.Line)
	}
	el := time.Since(start)
	cpu := procCPU(f.pid) - cpu0
	close(stop)
	<-sampled
	time.Sleep(10 * time.Second)
	rssAfter := procRSS(f.pid)
	rate, baseRate := float64(lines)/el.Seconds(), float64(n)/baseDur.Seconds()
	perLine := time.Duration(int64(cpu) / int64(max(lines, 1)))
	tab.set("flood-rate", row{ours: fmt.Sprintf("%.0f lines/s", rate), tail: fmt.Sprintf("%d lines in %s", lines, fd(el)),
		base: fmt.Sprintf("straight from the camera: %.0f lines/s", baseRate), ratio: fmt.Sprintf("%.2f×", rate/baseRate),
		goal: "≥ 150,000 lines/s", met: yes(rate >= 150000)})
	tab.set("flood-cpu", row{ours: fmt.Sprintf("%.2f µs", float64(perLine.Nanoseconds())/1000),
		tail: fmt.Sprintf("%s CPU in all", fd(cpu)), goal: "≤ 6 µs", met: yes(perLine <= 6*time.Microsecond)})
	end := time.Now()
	return func() {
		rssLater, since := procRSS(f.pid), time.Since(end)
		tab.set("flood-rss", row{ours: fmt.Sprintf("%s / %s / %s", mib(rssBefore), mib(peak.Load()), mib(rssLater)),
			tail: fmt.Sprintf("after: %s after the flood (%s after 10 s)", since.Round(time.Second), mib(rssAfter)),
			goal: "after back to before (±10 %)", met: yes(float64(rssLater) <= 1.1*float64(rssBefore))})
	}
}
