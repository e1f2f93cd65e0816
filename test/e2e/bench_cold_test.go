package e2e

import (
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// benchCold measures a cold converge of cams (no container, no volume, no
// image on any engine) until every camera answers ping: `fliswarm
// reconcile`, the original's steps with the docker CLI one node after the
// other, and the floor (`docker run -d` on every node at once), samples
// interleaved. A serialGoal of 0 skips the serial steps (at 100 nodes
// they take minutes per sample).
func benchCold(b *testing.B, bed *testbed.Bed, tab *table, key string, cams []logical, samples int, serialGoal float64, floorGoal float64) {
	e := newEnv(b, bed, withCameras(cams, nil, nil))
	var ours, serial, floor []time.Duration
	for s := 0; s < samples; s++ {
		coldReset(b, bed, cams)
		start := time.Now()
		if out, _, code := e.run(5*time.Minute, "reconcile"); code != 0 {
			b.Fatalf("reconcile exit %d:\n%s", code, out)
		}
		waitAll(b, cams)
		ours = append(ours, time.Since(start))

		coldReset(b, bed, cams)
		start = time.Now()
		for _, c := range cams {
			if serialGoal == 0 {
				break
			}
			for _, step := range [][]string{
				{"volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=" + bed.DataDir, "data"},
				{"pull", "-q", bed.ImageRef},
				runArgs(bed, c),
			} {
				if out, err := dockerCLI(c.engine.DockerHost, step...).CombinedOutput(); err != nil {
					b.Fatalf("%s: docker %v: %v\n%s", c.name, step, err, out)
				}
			}
			if err := waitCLU(c.addr(), time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		if serialGoal > 0 {
			serial = append(serial, time.Since(start))
		}

		coldReset(b, bed, cams)
		start = time.Now()
		errs := make(chan error, len(cams))
		for _, c := range cams {
			go func() {
				out, err := dockerCLI(c.engine.DockerHost, runArgs(bed, c)...).CombinedOutput()
				if err != nil {
					errs <- fmt.Errorf("%s: docker run: %v\n%s", c.name, err, out)
					return
				}
				errs <- waitCLU(c.addr(), time.Minute)
			}()
		}
		for range cams {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		floor = append(floor, time.Since(start))
		serialText := "skipped"
		if s < len(serial) {
			serialText = fd(serial[s])
		}
		b.Logf("%s sample %d: fliswarm %s, serial %s, floor %s", key, s+1, fd(ours[s]), serialText, fd(floor[s]))
	}
	coldReset(b, bed, cams)
	tail := fmt.Sprintf("worst %s (%d samples)", fd(worst(ours)), len(ours))
	if serialGoal == 0 {
		tab.set(key+"-floor", row{ours: fd(median(ours)), tail: tail,
			base: fmt.Sprintf("%s (worst %s)", fd(median(floor)), fd(worst(floor))), ratio: ratio(median(ours), median(floor))})
		return
	}
	rs := float64(median(ours)) / float64(median(serial))
	tab.set(key+"-serial", row{ours: fd(median(ours)), tail: tail,
		base: fmt.Sprintf("%s (worst %s)", fd(median(serial)), fd(worst(serial))), ratio: ratio(median(ours), median(serial)),
		goal: fmt.Sprintf("≤ %.1f×", serialGoal), met: yes(rs <= serialGoal)})
	rf := float64(median(ours)) / float64(median(floor))
	r := row{ours: fd(median(ours)), tail: tail,
		base: fmt.Sprintf("%s (worst %s)", fd(median(floor)), fd(worst(floor))), ratio: ratio(median(ours), median(floor))}
	if floorGoal > 0 {
		r.goal, r.met = fmt.Sprintf("≤ %.1f×", floorGoal), yes(rf <= floorGoal)
	}
	tab.set(key+"-floor", r)
	// The floor's own ratio to the serial steps bounds what any tool can
	// reach here: on a bed whose engines share the machine's cores, the
	// parallel starts queue for the same CPUs.
	bound := float64(median(floor)) / float64(median(serial))
	tab.set(key+"-bound", row{ours: fmt.Sprintf("%.2f×", bound), tail: "floor " + fd(median(floor)) + ", serial " + fd(median(serial)),
		base: fmt.Sprintf("fliswarm: %.2f× serial", rs), goal: fmt.Sprintf("≤ %.1f× asked of fliswarm", serialGoal),
		met: map[bool]string{true: "unreachable here", false: "reachable"}[bound > serialGoal]})
}

// runArgs is `docker run -d` of a camera as the original ran it.
func runArgs(bed *testbed.Bed, c logical) []string {
	return []string{"run", "-d", "--name", "flicamera-" + c.name, "--privileged", "--network", "host",
		"-v", "data:" + bed.DataDir, "-e", "ACTOR_NAME=" + c.name, "-e", "OBSERVATORY=APO",
		"-e", "FLICAMERA_PORT=" + strconv.Itoa(c.port), "-e", "FLICAMERA_DATA_DIR=" + bed.DataDir,
		"-e", "FLICAMERA_EXPOSURE_SCALE=0.2", bed.ImageRef}
}

func waitAll(b *testing.B, cams []logical) {
	errs := make(chan error, len(cams))
	for _, c := range cams {
		go func() { errs <- waitCLU(c.addr(), time.Minute) }()
	}
	for range cams {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

// coldReset removes the cameras' containers, the data volume and the
// camera images from every engine the cameras use (through each engine's
// socket, in parallel).
func coldReset(b *testing.B, bed *testbed.Bed, cams []logical) {
	byEngine := map[string][]string{}
	socks := map[string]string{}
	for _, c := range cams {
		byEngine[c.engine.Name] = append(byEngine[c.engine.Name], "flicamera-"+c.name)
		socks[c.engine.Name] = c.engine.Socket
	}
	var wg sync.WaitGroup
	for n, names := range byEngine {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sock := socks[n]
			// Absent objects are fine: errors are ignored on purpose.
			_ = exec.Command("docker", append([]string{"-H", sock, "rm", "-f"}, names...)...).Run()
			_ = exec.Command("docker", "-H", sock, "volume", "rm", "-f", "data").Run()
			_ = exec.Command("docker", "-H", sock, "image", "rm", "-f", bed.ImageRef, bed.ImageV2Ref).Run()
		}()
	}
	wg.Wait()
}
