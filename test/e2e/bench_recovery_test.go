package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	fsengine "github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

const recoverySamples = 10

// benchRecovery: a daemon managing one camera ("rec" on the first
// engine) against a `--restart always` container of the same image on
// the same engine: the process killed 10 times in a row (both, at the
// same time), then the container removed 10 times in a row.
func benchRecovery(b *testing.B, bed *testbed.Bed, tab *table) {
	n := bed.Nodes[0]
	rec := logical{name: "rec", engine: n, port: 19981}
	e := newEnv(b, bed, withCameras([]logical{rec}, nil, nil))
	e.startDaemon()
	defer e.stopDaemon()
	defer func() {
		_ = exec.Command("docker", "-H", n.Socket, "rm", "-f", "flicamera-rec", "bench-restart-always").Run()
	}()
	eng := engineFor(b, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := opscore.Dial(ctx, e.actor)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { c.Close() }()
	talk := func() error {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		final, err := c.Send(cctx, "talk -n rec ping", nil)
		if err == nil && final.Code != opscore.Done {
			err = fmt.Errorf("%s", final.Line)
		}
		return err
	}
	waitTalk := func(limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for {
			err := talk()
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("talk -n rec ping: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := waitTalk(2 * time.Minute); err != nil {
		b.Fatal(err)
	}

	// Docker's policy, crashed the same way at the same time.
	const basePort = 19990
	_ = runDocker(n, "rm", "-f", "bench-restart-always")
	if err := ensureVolume(bed, n); err != nil {
		b.Fatal(err)
	}
	args := runArgs(bed, logical{name: "bench", engine: n, port: basePort})
	args = append([]string{"run", "-d", "--name", "bench-restart-always", "--restart", "always"}, args[4:]...)
	if out, err := dockerCLI(n.DockerHost, args...).CombinedOutput(); err != nil {
		b.Fatalf("docker run: %v\n%s", err, out)
	}
	type result struct {
		ds  []time.Duration
		err error
	}
	baseCh := make(chan result, 1)
	go func() {
		ds, err := killSeries(ctx, eng, "bench-restart-always", func(time.Duration) error {
			return waitCLU(net2(n.IP, basePort), 3*time.Minute)
		})
		baseCh <- result{ds, err}
	}()
	ours, err := killSeries(ctx, eng, "flicamera-rec", waitTalk)
	if err != nil {
		b.Fatal(err)
	}
	base := <-baseCh
	if base.err != nil {
		b.Fatal(base.err)
	}
	tab.set("kill-series", row{ours: fmt.Sprintf("%s; total %s", fd(median(ours)), fd(total(ours))), tail: "worst " + fd(worst(ours)),
		base:  fmt.Sprintf("%s (worst %s); total %s", fd(median(base.ds)), fd(worst(base.ds)), fd(total(base.ds))),
		ratio: ratio(total(ours), total(base.ds)) + " (total)", goal: "never slower than Docker's policy",
		met: yes(total(ours) <= total(base.ds) && worst(ours) <= worst(base.ds))})
	tab.set("kill-schedule", row{ours: seq(ours), base: "Docker: " + seq(base.ds)})

	// Removal: fliswarm recreates; Docker's policy cannot (the container is gone).
	var rm []time.Duration
	for i := 0; i < recoverySamples; i++ {
		ctr, err := eng.InspectContainer(ctx, "flicamera-rec")
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := eng.RemoveContainer(ctx, ctr.ID, true); err != nil {
			b.Fatal(err)
		}
		if err := waitTalk(time.Minute); err != nil {
			b.Fatal(err)
		}
		rm = append(rm, time.Since(start))
	}
	_ = runDocker(n, "rm", "-f", "bench-restart-always")
	time.Sleep(5 * time.Second)
	_, err = eng.InspectContainer(ctx, "bench-restart-always")
	baseRm := "Docker's policy: gone (not back 5 s after `rm -f`)"
	if err == nil {
		baseRm = "Docker's policy: came back"
	}
	tab.set("rm-first", row{ours: fd(median(rm)), tail: "worst " + fd(worst(rm)), base: baseRm, goal: "< 0.5 s median",
		met: yes(median(rm) < 500*time.Millisecond)})
	tab.set("rm-series", row{ours: seq(rm), base: baseRm})
	b.Logf("removal series: %s", seq(rm))

	// More first restarts: a fresh daemon (its crash count starts at 0)
	// and a fresh Docker container each time, killed once.
	first, baseFirst := []time.Duration{ours[0]}, []time.Duration{base.ds[0]}
	for len(first) < 5 {
		e.stopDaemon()
		e.startDaemon()
		_ = runDocker(n, "rm", "-f", "bench-restart-always")
		if out, err := dockerCLI(n.DockerHost, args...).CombinedOutput(); err != nil {
			b.Fatalf("docker run: %v\n%s", err, out)
		}
		c.Close()
		if c, err = opscore.Dial(ctx, e.actor); err != nil {
			b.Fatal(err)
		}
		if err := waitTalk(time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := waitCLU(net2(n.IP, basePort), time.Minute); err != nil {
			b.Fatal(err)
		}
		o, err := killOnce(ctx, eng, "flicamera-rec", waitTalk)
		if err != nil {
			b.Fatal(err)
		}
		d, err := killOnce(ctx, eng, "bench-restart-always", func(time.Duration) error { return waitCLU(net2(n.IP, basePort), time.Minute) })
		if err != nil {
			b.Fatal(err)
		}
		first, baseFirst = append(first, o), append(baseFirst, d)
	}
	tab.set("kill-first", row{ours: fd(median(first)), tail: fmt.Sprintf("worst %s (%d samples: %s)", fd(worst(first)), len(first), seq(first)),
		base:  fmt.Sprintf("Docker `--restart always`: %s (worst %s)", fd(median(baseFirst)), fd(worst(baseFirst))),
		ratio: ratio(median(first), median(baseFirst)), goal: "< 0.5 s median", met: yes(median(first) < 500*time.Millisecond)})
}

func net2(ip string, port int) string { return ip + ":" + strconv.Itoa(port) }

// killOnce kills the container's main process once and returns how long
// it took back() to see it answer again.
func killOnce(ctx context.Context, eng *fsengine.Client, name string, back func(time.Duration) error) (time.Duration, error) {
	ctr, err := eng.InspectContainer(ctx, name)
	if err != nil || !ctr.Running || ctr.Pid == 0 {
		return 0, fmt.Errorf("%s: not running: %v", name, err)
	}
	start := time.Now()
	if err := syscall.Kill(ctr.Pid, syscall.SIGKILL); err != nil {
		return 0, err
	}
	if err := back(time.Minute); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// killSeries kills the container's main process recoverySamples times in
// a row, each time as soon as back() says it answers again.
func killSeries(ctx context.Context, eng *fsengine.Client, name string, back func(time.Duration) error) ([]time.Duration, error) {
	var out []time.Duration
	for i := 0; i < recoverySamples; i++ {
		var pid int
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
			c, err := eng.InspectContainer(ctx, name)
			if err == nil && c.Running && c.Pid != 0 {
				pid = c.Pid
				break
			}
			if time.Now().After(deadline) {
				return out, fmt.Errorf("%s: not running: %v", name, err)
			}
		}
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return out, fmt.Errorf("kill %d: %w", pid, err)
		}
		if err := back(3 * time.Minute); err != nil {
			return out, fmt.Errorf("%s after kill %d: %w", name, i+1, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// crashLoop runs, side by side for window, a camera that exits 2 at start
// under fliswarm (a daemon of its own, on the second engine) and under
// Docker's `--restart always` (on the third engine), and reports starts
// and CPU. It runs concurrently with other rows; it returns a function
// that waits for the window's end and fills the rows.
func crashLoop(b *testing.B, bed *testbed.Bed, tab *table, window time.Duration) (wait func()) {
	ours, theirs := bed.Nodes[1%len(bed.Nodes)], bed.Nodes[2%len(bed.Nodes)]
	loop := logical{name: "loop", engine: ours, port: 19982}
	px := startProxy(b, ours) // counts fliswarm's requests per start
	e := newEnv(b, bed, func(cfg map[string]any) {
		withCameras([]logical{loop}, map[string]string{loop.name: "tcp://" + px.addr},
			map[string]string{"FLICAMERA_EXPOSURE_SCALE": "fast"})(cfg)
		delete(cfg, "resync_interval") // the default, as the service runs
	})
	e.mode = "--foreground" // as the service runs it: info-level JSON logs
	dockerName := "bench-loop-docker"
	_ = runDocker(theirs, "rm", "-f", dockerName)
	// The camera's own settings, then the one it cannot use (the last -e
	// of a name wins), then the image.
	args := runArgs(bed, logical{name: "x", engine: theirs, port: 19983})
	args = append(append([]string{"run", "-d", "--name", dockerName, "--restart", "always"}, args[4:len(args)-1]...),
		"-e", "FLICAMERA_EXPOSURE_SCALE=fast", bed.ImageRef)
	// The image and the volume must be there before the window starts, for both.
	for _, n := range []testbed.Node{ours, theirs} {
		if err := ensureVolume(bed, n); err != nil {
			b.Fatal(err)
		}
	}
	if out, err := dockerCLI(theirs.DockerHost, "pull", "-q", bed.ImageRef).CombinedOutput(); err != nil {
		b.Fatalf("pull: %v\n%s", err, out)
	}
	if out, err := dockerCLI(ours.DockerHost, "pull", "-q", bed.ImageRef).CombinedOutput(); err != nil {
		b.Fatalf("pull: %v\n%s", err, out)
	}
	oursEng, theirsEng := enginePids(bed, ours.Name), enginePids(bed, theirs.Name)
	t0 := time.Now()
	cpuOurs0, cpuTheirs0 := cpuOf(oursEng), cpuOf(theirsEng)
	e.startDaemon()
	daemonPid := e.daemon.Process.Pid
	if out, err := dockerCLI(theirs.DockerHost, args...).CombinedOutput(); err != nil {
		b.Fatalf("docker run: %v\n%s", err, out)
	}
	return func() {
		time.Sleep(time.Until(t0.Add(window)))
		daemonCPU := procCPU(daemonPid)
		cpuOurs, cpuTheirs := cpuOf(oursEng)-cpuOurs0, cpuOf(theirsEng)-cpuTheirs0
		t1 := time.Now()
		e.stopDaemon()
		so, st := countStarts(ours, "flicamera-loop", t0, t1), countStarts(theirs, dockerName, t0, t1)
		_ = runDocker(theirs, "rm", "-f", dockerName)
		_ = runDocker(ours, "rm", "-f", "flicamera-loop")
		win := fmt.Sprintf(" (%s window)", window)
		tab.set("loop-starts", row{ours: strconv.Itoa(so), base: "Docker `--restart always`: " + strconv.Itoa(st),
			ratio: fmt.Sprintf("%.2f×", float64(so)/float64(max(st, 1))), goal: "fewer than Docker" + win, met: yes(so < st)})
		var reqs int
		counts := px.snapshot()
		for path, c := range counts {
			if !strings.HasPrefix(path, "GET /events") {
				reqs += c
			}
		}
		tab.detail("crash loop under fliswarm: %d API requests over the window (%.1f per start): %s; engine CPU per start: fliswarm %s, Docker's policy %s",
			reqs, float64(reqs)/float64(max(so, 1)), fmtCounts(counts), fd(cpuOurs/time.Duration(max(so, 1))), fd(cpuTheirs/time.Duration(max(st, 1))))
		perStart := float64(reqs) / float64(max(so, 1))
		tab.set("loop-api", row{ours: fmt.Sprintf("%.1f", perStart), tail: fmt.Sprintf("%d requests for %d starts", reqs, so),
			base: "the event stream not counted", goal: "≤ 8", met: yes(perStart <= 8)})
		tot := daemonCPU + cpuOurs
		tab.set("loop-cpu", row{ours: fmt.Sprintf("%s (daemon %s + engine %s)", fd(tot), fd(daemonCPU), fd(cpuOurs)),
			base: "Docker: engine " + fd(cpuTheirs), ratio: ratio(tot, cpuTheirs), goal: "less than Docker" + win, met: yes(tot < cpuTheirs)})
	}
}

// countStarts counts the engine's start events of a container name
// between t0 and t1.
func countStarts(n testbed.Node, name string, t0, t1 time.Time) int {
	out, err := exec.Command("docker", "-H", n.Socket, "events", "--since", strconv.FormatInt(t0.Unix()-1, 10),
		"--until", strconv.FormatInt(t1.Unix()+1, 10), "--filter", "type=container", "--filter", "event=start",
		"--format", "{{.Actor.Attributes.name}}").Output()
	if err != nil {
		return -1
	}
	count := 0
	for _, f := range strings.Fields(string(out)) {
		if f == name {
			count++
		}
	}
	return count
}
