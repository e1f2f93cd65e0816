package actor

import (
	"context"

	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// TryStart starts the common talk, one connected camera selected with
// nothing to warn about, without a goroutine of its own (it implements
// opscore.Starter): the command line goes to the camera from the user's
// reading goroutine, without waiting, and the camera's replies are relayed,
// and the command ended, from the camera's reader (see talkRun.onReply).
// The command's timeout and its user's leaving are timers (see
// device.Client.SendAsync). Anything else, and a camera whose connection
// is busy writing another command line, is left to Handle: TryStart then
// returns false having written nothing.
func (a *Actor) TryStart(ctx context.Context, cmd *opscore.Command) bool {
	if cmd.Verb != "talk" {
		return false
	}
	args, err := parseTalkArgs(cmd.Args)
	if err != nil || args.Help || len(args.Words) == 0 {
		return false
	}
	spec := a.currentSpec()
	selected, warnings := selectNodes(spec, a.enabled(spec), args.Names, args.Category)
	if len(selected) != 1 || len(warnings) > 0 {
		return false
	}
	name := selected[0]
	c := a.device(name)
	if c == nil || !c.Connected() {
		return false
	}
	t := newTalkRun(a, ctx, cmd, args.CameraCommand(), 1)
	t.started = true
	if t.exposing {
		a.cams.busy.begin(name)
	}
	ended := false // by the camera's terminal reply; read after the last onReply
	err = c.SendAsync(ctx, t.camCmd, commandTimeout(spec), t.onReply(name, &ended), func(_ device.Result, err error) {
		if t.exposing {
			a.cams.busy.end(name)
		}
		t.after(name, ended, err)
		a.opts.Metrics.CommandDone(cmd.Verb, commandOutcome(cmd.Status()))
	})
	if err != nil {
		if t.exposing {
			a.cams.busy.end(name)
		}
		return false // not sent: talk sends it, or says why not
	}
	return true
}

// commandOutcome is the outcome label of a command's end (see Handle).
func commandOutcome(code opscore.Code) string {
	switch code {
	case opscore.Done:
		return "done"
	case 0:
		return "running"
	}
	return "failed"
}
