package e2e

import (
	"bufio"
	"context"

	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	fsengine "github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// Benchmarks run on the test bed (make bench). Each reports medians over
// several samples taken in the same run, beside a baseline measured in
// the same run on the same node, so that the ratio holds on a noisy,
// shared machine.

const crashSamples = 8

// BenchmarkCrashRecovery: time from kill -9 of a camera's process until
// its port accepts again. fliswarm (event → reconcile → start) against
// Docker's own `--restart always` on the same node, whose delay doubles
// with every crash.
func BenchmarkCrashRecovery(b *testing.B) {
	bed := testbed.Ensure(b)
	runningDaemon(b, bed) // the daemon keeps flicamera-<node> running
	n := bed.Nodes[0]
	eng := engineFor(b, n)

	// Baseline: a restart-always container of the same image on another
	// port, crashed the same number of times.
	const basePort = 19990
	_ = runDocker(n, "rm", "-f", "bench-restart-always")
	bed.Docker(b, n.Name, "run", "-d", "--name", "bench-restart-always", "--restart", "always",
		"--privileged", "--network", "host", "-e", "ACTOR_NAME=bench", "-e", "FLICAMERA_PORT="+strconv.Itoa(basePort),
		"-e", "FLICAMERA_DATA_DIR=/tmp", bed.ImageRef)
	defer func() { _ = runDocker(n, "rm", "-f", "bench-restart-always") }()

	for i := 0; i < b.N; i++ {
		ours := crashLoop(b, eng, n, "flicamera-"+n.Name, 19995)
		base := crashLoop(b, eng, n, "bench-restart-always", basePort)
		report(b, "fliswarm", ours)
		report(b, "docker-restart-always", base)
		b.ReportMetric(float64(median(base))/float64(median(ours)), "median-speedup-x")
	}
}

// crashLoop kills the container's main process crashSamples times in a
// row and returns the time each took to answer on its port again.
func crashLoop(b *testing.B, eng *fsengine.Client, n testbed.Node, name string, port int) []time.Duration {
	b.Helper()
	ctx := context.Background()
	addr := net.JoinHostPort(n.IP, strconv.Itoa(port))
	waitPort(b, addr, 30*time.Second)
	var out []time.Duration
	for i := 0; i < crashSamples; i++ {
		c, err := eng.InspectContainer(ctx, name)
		if err != nil || c.Pid == 0 {
			b.Fatalf("%s: inspect: %v (pid %d)", name, err, c.Pid)
		}
		start := time.Now()
		if err := syscall.Kill(c.Pid, syscall.SIGKILL); err != nil {
			b.Fatalf("kill %d: %v", c.Pid, err)
		}
		// Wait for a new process, then for its port.
		deadline := start.Add(60 * time.Second)
		for {
			if time.Now().After(deadline) {
				b.Fatalf("%s did not come back within 60 s", name)
			}
			nc, err := eng.InspectContainer(ctx, name)
			if err == nil && nc.Running && nc.Pid != 0 && nc.Pid != c.Pid {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		waitPort(b, addr, time.Until(deadline))
		out = append(out, time.Since(start))
	}
	return out
}

func waitPort(b testing.TB, addr string, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatalf("%s did not accept connections within %s", addr, timeout)
}

// BenchmarkColdStart: `fliswarm reconcile` of every node from nothing
// (volume, image pull, privileged container, camera answering), against
// the floor: `docker run -d` of the same container on each node, in
// parallel, until its port accepts.
func BenchmarkColdStart(b *testing.B) {
	bed := testbed.Ensure(b)
	e := newEnv(b, bed, nil)
	var ours, floor []time.Duration
	for i := 0; i < b.N; i++ {
		for s := 0; s < 5; s++ {
			resetBed(b, bed, true)
			start := time.Now()
			if out, _, code := e.run(3*time.Minute, "reconcile"); code != 0 {
				b.Fatalf("reconcile exit %d:\n%s", code, out)
			}
			ours = append(ours, time.Since(start))

			resetBed(b, bed, true)
			start = time.Now()
			errs := make(chan error, len(bed.Nodes))
			for _, n := range bed.Nodes {
				go func() {
					_, err := bed.TryDocker(n.Name, "run", "-d", "--name", "flicamera-"+n.Name, "--privileged",
						"--network", "host", "-e", "ACTOR_NAME="+n.Name, "-e", "FLICAMERA_DATA_DIR=/tmp", bed.ImageRef)
					if err == nil {
						waitPort(b, net.JoinHostPort(n.IP, "19995"), time.Minute)
					}
					errs <- err
				}()
			}
			for range bed.Nodes {
				if err := <-errs; err != nil {
					b.Fatal(err)
				}
			}
			floor = append(floor, time.Since(start))
			for _, n := range bed.Nodes {
				_ = runDocker(n, "rm", "-f", "flicamera-"+n.Name)
			}
		}
	}
	report(b, "fliswarm-reconcile", ours)
	report(b, "docker-run-floor", floor)
	b.ReportMetric(float64(median(ours))/float64(median(floor)), "median-ratio-to-floor")
}

// BenchmarkConvergedReconcile: a `fliswarm reconcile` that finds every
// node converged (observe all, act on nothing), against `fliswarm
// version` (process start alone).
func BenchmarkConvergedReconcile(b *testing.B) {
	bed := testbed.Ensure(b)
	e := newEnv(b, bed, nil)
	converge(b, e)
	var ours, base []time.Duration
	for i := 0; i < b.N; i++ {
		for s := 0; s < 7; s++ {
			start := time.Now()
			if out, _, code := e.run(time.Minute, "reconcile"); code != 0 || strings.Count(out, "nothing to do") != len(bed.Nodes) {
				b.Fatalf("exit %d:\n%s", code, out)
			}
			ours = append(ours, time.Since(start))
			start = time.Now()
			e.run(time.Minute, "version")
			base = append(base, time.Since(start))
		}
	}
	report(b, "reconcile-noop", ours)
	report(b, "process-start", base)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(b *testing.B, name string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	b.ReportMetric(float64(median(s).Microseconds())/1000, name+"-median-ms")
	b.ReportMetric(float64(s[len(s)-1].Microseconds())/1000, name+"-max-ms")
	var parts []string
	for _, d := range ds {
		parts = append(parts, d.Round(10*time.Microsecond).String())
	}
	b.Logf("%s: median %s, min %s, max %s over %d samples: %s", name, median(s).Round(10*time.Microsecond),
		s[0].Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond), len(s), strings.Join(parts, " "))
}

// BenchmarkTalkLatency: round trip of `talk -n <node> ping` through the
// actor (opscore in, JSON protocol out and back, relay) against `ping`
// sent straight to the same camera over its JSON protocol.
func BenchmarkTalkLatency(b *testing.B) {
	bed := testbed.Ensure(b)
	e, _ := runningDaemon(b, bed)
	n := bed.Nodes[0]
	waitConnected(b, e, n.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := opscore.Dial(ctx, e.actor)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cam, err := net.DialTimeout("tcp", net.JoinHostPort(n.IP, "19995"), 5*time.Second)
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
	const samples = 101
	var ours, base []time.Duration
	for i := 0; i < b.N; i++ {
		for s := 0; s < samples; s++ {
			start := time.Now()
			final, err := c.Send(ctx, "talk -n "+n.Name+" ping", nil)
			if err != nil || final.Code != opscore.Done {
				b.Fatalf("talk ping: %v %s", err, final.Line)
			}
			ours = append(ours, time.Since(start))
			start = time.Now()
			if err := direct(s + 1); err != nil {
				b.Fatal(err)
			}
			base = append(base, time.Since(start))
		}
	}
	report(b, "talk-through-actor", ours)
	report(b, "camera-direct", base)
	b.ReportMetric(float64(median(ours))/float64(median(base)), "median-ratio-to-direct")
}
