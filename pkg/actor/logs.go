package actor

import (
	"context"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// Logs reads a camera container's output; the daemon's manager
// implements it with the controller's engine connections.
type Logs interface {
	// TailLogs returns the last n lines of the current run of node's
	// camera container, oldest first. An error says why nothing could be
	// read: a node not configured or not enabled, its engine not
	// answering, no camera container.
	TailLogs(ctx context.Context, node string, n int) ([]string, error)
}

// The number of lines `logs` answers with. Each line is one reply to
// the commander, which tron also writes to its log and shows in every
// window watching the actor: 200 keeps one command from burying
// everything else there; the whole output is `fliswarm logs` on the
// fliswarm computer.
const (
	DefaultLogLines = 20
	MaxLogLines     = 200
)

// logs answers `logs NODE [--tail N]`: `text=<node>,"<line>"` for each
// of the camera's last N lines, then `:`; it fails with
// `error=<node>,"<why>"`.
func (a *Actor) logs(ctx context.Context, cmd *opscore.Command) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	if fs.NArg() != 1 {
		a.usageError(cmd, "logs: give one node")
		return
	}
	node := fs.Arg(0)
	n, _ := fs.GetInt("tail")
	if n < 1 || n > MaxLogLines {
		a.usageError(cmd, "logs: --tail must be between 1 and %d", MaxLogLines)
		return
	}
	if a.opts.Logs == nil {
		a.fail(cmd, "Camera logs are not available.")
		return
	}
	lines, err := a.opts.Logs.TailLogs(ctx, node, n)
	if err != nil {
		cmd.Fail(opscore.KW("error", node, err.Error()))
		return
	}
	for _, l := range lines {
		cmd.Write(opscore.Info, opscore.KW("text", node, opscore.Quoted(l)))
	}
	cmd.Finish()
}
