package actor

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// simulations are the running simulate commands. Like a CLU cancellable
// command, at most one runs at a time and `simulate --stop` stops it.
type simulations struct {
	mu      sync.Mutex
	running []*simRun
}

type simRun struct {
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopped  chan struct{} // closed by --stop before cancel
	done     chan struct{} // closed once the command has ended
}

// simulate writes filename=<node>,<node>,<path> to the command for every
// enabled node every --delay seconds, cycling through the files matching
// GLOB (shuffled once with --random), until `simulate --stop`, which ends
// it with `f error="This command has been cancelled."` and finishes itself
// with text="Command has been stopped.", as CLU does.
func (a *Actor) simulate(ctx context.Context, cmd *opscore.Command) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	delay, _ := fs.GetFloat64("delay")
	random, _ := fs.GetBool("random")
	stop, _ := fs.GetBool("stop")
	if stop {
		a.stopSimulation(ctx, cmd)
		return
	}
	switch {
	case fs.NArg() == 0:
		a.fail(cmd, "A valid path pattern is required to start the simulation.")
		return
	case fs.NArg() > 1:
		a.fail(cmd, "simulate: unexpected argument %q", fs.Arg(1))
		return
	case math.IsNaN(delay) || delay <= 0 || delay > 86400:
		a.fail(cmd, "--delay must be a number of seconds above 0.")
		return
	}
	images, err := filepath.Glob(fs.Arg(0))
	if err != nil {
		a.fail(cmd, "Invalid path pattern %q: %v.", fs.Arg(0), err)
		return
	}
	if len(images) == 0 {
		a.fail(cmd, "No images found.")
		return
	}
	if random {
		rand.Shuffle(len(images), func(i, j int) { images[i], images[j] = images[j], images[i] })
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &simRun{cancel: cancel, stopped: make(chan struct{}), done: make(chan struct{})}
	a.sims.mu.Lock()
	if len(a.sims.running) > 0 {
		a.sims.mu.Unlock()
		a.fail(cmd, "Another command with name simulate is already running.")
		return
	}
	a.sims.running = append(a.sims.running, run)
	a.sims.mu.Unlock()
	defer func() {
		a.sims.mu.Lock()
		a.sims.running = slices.DeleteFunc(a.sims.running, func(r *simRun) bool { return r == run })
		a.sims.mu.Unlock()
		close(run.done)
	}()

	period := time.Duration(delay * float64(time.Second))
	next := 0
	for {
		for _, n := range a.enabled(a.currentSpec()) {
			cmd.Write(opscore.Info, opscore.KW("filename", n, n, images[next%len(images)]))
			next++
		}
		if !sleepCtx(sctx, period) {
			break
		}
	}
	select {
	case <-run.stopped:
		cmd.Fail(opscore.KW("error", a.actorName(), "This command has been cancelled."))
	default: // the user is gone
	}
}

// stopSimulation stops the running simulate command.
func (a *Actor) stopSimulation(ctx context.Context, cmd *opscore.Command) {
	a.sims.mu.Lock()
	if len(a.sims.running) == 0 {
		a.sims.mu.Unlock()
		a.fail(cmd, "Cannot find a running command simulate.")
		return
	}
	run := a.sims.running[0]
	a.sims.mu.Unlock()
	run.stopOnce.Do(func() { close(run.stopped) })
	run.cancel()
	select {
	case <-run.done:
		cmd.Finish(opscore.KW("text", "Command has been stopped."))
	case <-ctx.Done():
	}
}
