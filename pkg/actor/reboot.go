package actor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// reboot restarts the selected node computers: over ssh (soft), or by
// power cycling them through the power actor via tron (--hard). Then, after
// a pause, it reports the status of every enabled node, as the original
// does by running `status`.
func (a *Actor) reboot(ctx context.Context, cmd *opscore.Command) {
	fs, spec, nodes, ok := a.selectedNodes(cmd)
	if !ok {
		return
	}
	hard, _ := fs.GetBool("hard")

	var failed []string
	if hard {
		failed, ok = a.powerCycle(ctx, cmd, spec, nodes)
	} else {
		failed, ok = a.softReboot(ctx, cmd, spec, nodes)
	}
	if !ok {
		return
	}

	if !sleepCtx(ctx, a.opts.RebootStatusDelay) {
		return
	}
	enabled := a.enabled(spec)
	writeLines(cmd, []line{enabledNodesLine(enabled)})
	a.writeNodeStatus(cmd, spec, enabled)
	switch {
	case len(failed) > 0 && hard:
		a.fail(cmd, "Failed commanding power cycling of %s. You will need to fix this problem manually.", strings.Join(failed, ", "))
		return
	case len(failed) > 0:
		a.fail(cmd, "Failed rebooting %s.", strings.Join(failed, ", "))
		return
	}
	cmd.Finish()
}

// softReboot runs `ssh <user>@<host> <reboot_command>` for every node at
// once. ssh exits 255 when the connection drops as the node goes down, so
// 255 counts as success, as in the original. It returns the nodes that
// failed, and false when the command was failed or its user is gone.
func (a *Actor) softReboot(ctx context.Context, cmd *opscore.Command, spec *v1.Swarm, nodes []string) ([]string, bool) {
	words, err := opscore.SplitWords(spec.RebootCommand)
	if err != nil || len(words) == 0 {
		a.fail(cmd, "Invalid reboot_command %q.", spec.RebootCommand)
		return nil, false
	}
	results := make([]opscore.Keyword, len(nodes))
	codes := make([]opscore.Code, len(nodes))
	var wg sync.WaitGroup
	for i, name := range nodes {
		n := spec.Nodes[name]
		wg.Go(func() {
			if n.User == "" {
				codes[i], results[i] = opscore.Error, text("Failed rebooting %s: node %s has no ssh user configured.", n.Host, name)
				return
			}
			args := append([]string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", n.User + "@" + n.Host}, words...)
			ectx, cancel := context.WithTimeout(ctx, DefaultExecTimeout)
			out, code, err := a.opts.Exec(ectx, "ssh", args...)
			cancel()
			switch {
			case err != nil:
				codes[i], results[i] = opscore.Error, text("Failed rebooting %s: %v.", n.Host, err)
			case code == 0 || code == 255:
				codes[i], results[i] = opscore.Info, text("Restarting %s.", n.Host)
			default:
				detail := strings.TrimSpace(string(out))
				if len(detail) > 200 {
					detail = detail[:200] + "..."
				}
				codes[i], results[i] = opscore.Error, text("Failed rebooting %s (ssh exit code %d: %s).", n.Host, code, detail)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, false
	}
	var failed []string
	for i, name := range nodes {
		cmd.Write(codes[i], results[i])
		if codes[i] != opscore.Info {
			failed = append(failed, name)
		}
	}
	return failed, true
}

// PowerCommandTimeout bounds one power command sent through the hub.
const PowerCommandTimeout = time.Minute

// powerCycle sends the power actor's poweroff for every node's power
// device, then (after PowerCycleDelay) poweron for every one of them,
// through tron, and reports each node's outcome of each step (`i` when
// done, `w` error=<node>,... when not). Power-on goes to every node
// whatever failed, also to a node whose power-off failed (it may be off
// all the same, and powering on a computer that is on does nothing), and
// the cycle runs to its end even when the user that asked is gone: a hard
// reboot must never leave a computer off. It returns the nodes for which
// a step failed, and false when the command was failed before anything
// was sent.
func (a *Actor) powerCycle(ctx context.Context, cmd *opscore.Command, spec *v1.Swarm, nodes []string) ([]string, bool) {
	p := spec.Power
	if p == nil || p.Actor == "" || p.Command.PowerOn == "" || p.Command.PowerOff == "" {
		a.fail(cmd, "No power configuration: a hard reboot needs power.actor and power.command.")
		return nil, false
	}
	hub := a.hub()
	if hub == nil {
		a.fail(cmd, "No tron connection configured: a hard reboot needs actor.tron_host.")
		return nil, false
	}
	ctx = context.WithoutCancel(ctx) // finish the cycle even if the user goes
	timeout := PowerCommandTimeout
	if d := commandTimeout(spec); d > 0 {
		timeout = d
	}
	bad := map[string]bool{}
	execute := func(mode, command string) {
		cmd.Write(opscore.Info, text("Powering %s computers.", mode))
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, name := range nodes {
			dev := name
			if pd := spec.Nodes[name].Power; pd != nil && pd.Device != "" {
				dev = pd.Device
			}
			full := command + " " + dev
			wg.Go(func() {
				hctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				r, err := hub.Command(hctx, p.Actor, full)
				var msg string
				switch {
				case err != nil:
					msg = fmt.Sprintf("power %s failed: %s %s: %v", mode, p.Actor, full, err)
				case r.Code != opscore.Done:
					msg = fmt.Sprintf("power %s failed: %s %s: %s", mode, p.Actor, full, opscore.EncodeKeywords(r.Keywords...))
				default:
					cmd.Write(opscore.Info, text("%s: powered %s (%s %s).", name, mode, p.Actor, full))
					return
				}
				cmd.Write(opscore.Warning, opscore.KW("error", name, msg))
				a.log.Info("power command failed", "node", name, "mode", mode, "err", msg)
				mu.Lock()
				bad[name] = true
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	execute("off", p.Command.PowerOff)
	sleepCtx(ctx, a.opts.PowerCycleDelay)
	execute("on", p.Command.PowerOn)
	var failed []string
	for _, n := range nodes {
		if bad[n] {
			failed = append(failed, n)
		}
	}
	return failed, true
}

// sleepCtx waits d (nothing for d <= 0); it returns false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
