package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// BenchmarkTable is `make bench`: one table, every figure beside a
// baseline measured in the same run (see bench_table_test.go). The order:
// cold converges alone (they remove everything from every engine); then,
// while the crash-loop window runs on the second and third engines, a
// 3-node and a 30-node daemon sit idle for the footprint window, then
// carry the relay rows; the recovery rows run on the first engine with a
// daemon of their own; last, the 3-node daemon is restarted.
func BenchmarkTable(b *testing.B) {
	bed := testbed.Ensure(b)
	tab := newTable(benchRows...)
	defer tab.write(b)
	for range b.N {
		benchTable(b, bed, tab)
	}
}

func benchTable(b *testing.B, bed *testbed.Bed, tab *table) {
	idle := envDuration("BENCH_IDLE", defaultIdle)
	loopWindow := envDuration("BENCH_CRASHLOOP", defaultCrashLoop)
	three := bedCameras(bed)
	thirty := spreadCameras(bed, "c", 30, 19100)
	hundred := spreadCameras(bed, "h", 100, 19200)
	step := func(what string) func() {
		start := time.Now()
		b.Logf("== %s", what)
		return func() { b.Logf("== %s done in %s", what, time.Since(start).Round(time.Second)) }
	}

	done := step("cold converge, 3 nodes")
	benchCold(b, bed, tab, "cold3", three, envInt("BENCH_COLD_SAMPLES", 5), 0.6, 1.5)
	done()
	done = step("cold converge, 30 nodes")
	benchCold(b, bed, tab, "cold30", thirty, envInt("BENCH_COLD30_SAMPLES", 3), 0.3, 0)
	done()
	done = step("cold converge, 100 nodes")
	benchCold(b, bed, tab, "cold100", hundred, envInt("BENCH_COLD100_SAMPLES", 2), 0, 0)
	done()

	done = step("crash-loop window starts; 3-, 30- and 100-node daemons")
	waitLoop := crashLoop(b, bed, tab, loopWindow)
	f3, f30, f100 := startFleet(b, bed, three), startFleet(b, bed, thirty), startFleet(b, bed, hundred)
	f3.waitReady(b, 3*time.Minute)
	f30.waitReady(b, 3*time.Minute)
	f100.waitReady(b, 5*time.Minute)
	done()

	done = step("idle footprint")
	benchIdle(b, bed, tab, idle, map[string]*fleet{"3": f3, "30": f30, "100": f100})
	f100.e.stopDaemon()
	removeNamed(bed, hundred)
	done()

	done = step("relay")
	benchTalkPing(b, tab, f3, three[0], envInt("BENCH_PINGS", 1000))
	benchFanout(b, tab, "fanout3", f3, 21)
	benchFanout(b, tab, "fanout30", f30, 21)
	f30.e.stopDaemon()
	removeNamed(bed, thirty)
	floodLater := benchFlood(b, tab, f3, three[0], envInt("BENCH_FLOOD", 1_000_000))
	done()

	done = step("recovery")
	benchRecovery(b, bed, tab)
	done()

	floodLater() // the recovery rows took over 2 minutes
	done = step("restart with 3 healthy cameras")
	benchRestart(b, bed, tab, f3)
	f3.e.stopDaemon()
	done()

	done = step("end of the crash-loop window")
	waitLoop()
	done()
}

// benchRestart stops and starts the daemon with its cameras healthy and
// counts the containers recreated (new ID) and restarted (new start time).
func benchRestart(b *testing.B, bed *testbed.Bed, tab *table, f *fleet) {
	type seen struct {
		id      string
		started time.Time
	}
	look := func() map[string]seen {
		out := map[string]seen{}
		for _, c := range f.cams {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ctr, err := engineFor(b, c.engine).InspectContainer(ctx, "flicamera-"+c.name)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			out[c.name] = seen{ctr.ID, ctr.StartedAt}
		}
		return out
	}
	before := look()
	start := time.Now()
	f.e.stopDaemon()
	f.e.startDaemon()
	f.waitReady(b, time.Minute)
	ready := time.Since(start)
	time.Sleep(15 * time.Second) // a resync or two
	after := look()
	recreated, restarted := 0, 0
	for n, s := range before {
		if after[n].id != s.id {
			recreated++
		} else if !after[n].started.Equal(s.started) {
			restarted++
		}
	}
	tab.set("restart", row{ours: fmt.Sprintf("%d (%d)", recreated, restarted), tail: "every node ready again after " + fd(ready),
		goal: "0", met: yes(recreated == 0 && restarted == 0)})
	f.pid = f.e.daemon.Process.Pid
}

// removeNamed removes the cameras' containers (by name, on their engines).
func removeNamed(bed *testbed.Bed, cams []logical) {
	for _, c := range cams {
		_ = runDocker(c.engine, "rm", "-f", "flicamera-"+c.name)
	}
}
