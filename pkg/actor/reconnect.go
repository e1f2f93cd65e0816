package actor

import (
	"context"
	"strings"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// reconnect drops the selected nodes' camera connections, has the
// reconciler redeploy them (the image pulled and the container replaced,
// each step reported as it is taken; force: the volumes recreated too),
// then reconnects the cameras, waits for each, and reports each node's
// status. It fails naming the nodes that could not be brought back.
func (a *Actor) reconnect(ctx context.Context, cmd *opscore.Command) {
	fs, spec, nodes, ok := a.selectedNodes(cmd)
	if !ok {
		return
	}
	force, _ := fs.GetBool("force")

	select {
	case a.reconnectSem <- struct{}{}:
		defer func() { <-a.reconnectSem }()
	case <-ctx.Done():
		return
	}

	// Drop the cameras first, as the original does, and keep them down
	// until the containers are recreated.
	clients := map[string]*device.Client{}
	for _, n := range nodes {
		if c := a.device(n); c != nil {
			c.Pause()
			clients[n] = c
		}
	}
	// Pause closes the socket but the client reports Connected until its
	// reader has noticed; wait for that, so that nothing reaches the old
	// camera while its container is recreated.
	for _, c := range clients {
		waitState(ctx, c, false, pauseWait)
	}
	resumed := false
	resume := func() {
		if resumed {
			return
		}
		resumed = true
		for _, c := range clients {
			c.Resume() // also kicks: dial now
		}
	}
	defer resume()

	cmd.Write(opscore.Info, text("Reconnecting %s.", strings.Join(nodes, ", ")))
	cctx, cancel := context.WithTimeout(ctx, a.opts.ConvergeTimeout)
	errs := a.rec.Converge(cctx, nodes, v1.ConvergeOptions{Redeploy: true, Force: force,
		Progress: func(s v1.DeployStep) {
			cmd.Write(stepLine(s))
			// The old camera is gone: the client dials the new one, whose
			// connection is its readiness (the controller waits for it).
			if c := clients[s.Node]; c != nil && s.Kind == v1.StepRun {
				c.Resume()
			}
		}})
	cancel()
	resume()
	if ctx.Err() != nil {
		return
	}

	// Wait for the cameras of the nodes that converged.
	connected := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wctx, wcancel := context.WithTimeout(ctx, a.opts.DeviceWait)
	for _, n := range nodes {
		c := clients[n]
		if errs[n] != nil || c == nil {
			continue
		}
		wg.Go(func() {
			ok := waitConnected(wctx, c)
			mu.Lock()
			connected[n] = ok
			mu.Unlock()
		})
	}
	wg.Wait()
	wcancel()
	if ctx.Err() != nil {
		return
	}

	var failed []string
	for _, n := range nodes {
		a.writeNodeStatus(cmd, spec, []string{n})
		if err := errs[n]; err != nil {
			cmd.Write(opscore.Error, opscore.KW("error", n, err.Error()))
			failed = append(failed, n)
			continue
		}
		if connected[n] {
			cmd.Write(opscore.Debug, text("%s: reconnected to device on port %d.", n, spec.Nodes[n].Port))
		} else {
			cmd.Write(opscore.Warning, text("%s: failed to connect to device.", n))
			failed = append(failed, n)
		}
	}
	if len(failed) > 0 {
		a.fail(cmd, "Could not bring back %s.", strings.Join(failed, ", "))
		return
	}
	cmd.Finish()
}

// pauseWait bounds the wait for a paused camera client to drop.
const pauseWait = 5 * time.Second

// waitConnected polls until the client is connected or ctx ends.
func waitConnected(ctx context.Context, c *device.Client) bool {
	return waitState(ctx, c, true, 0)
}

// waitState polls until the client's Connected is want, or ctx ends, or
// max (if positive) passed. It returns whether the state was reached.
func waitState(ctx context.Context, c *device.Client, want bool, max time.Duration) bool {
	if max > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max)
		defer cancel()
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if c.Connected() == want {
			return true
		}
		select {
		case <-ctx.Done():
			return c.Connected() == want
		case <-t.C:
		}
	}
}
