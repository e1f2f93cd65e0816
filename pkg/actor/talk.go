package actor

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// filenameOf returns the file path of a camera's filename keyword: the
// last of its values ({camera, filename} in flicamera).
func filenameOf(r clu.Reply) (string, bool) {
	v, ok := r.Data.Get("filename")
	if !ok {
		return "", false
	}
	for {
		switch t := v.(type) {
		case string:
			return t, t != ""
		case clu.Object:
			if len(t) == 0 {
				return "", false
			}
			v = t[len(t)-1].Value
		case []any:
			if len(t) == 0 {
				return "", false
			}
			v = t[len(t)-1]
		default:
			return "", false
		}
	}
}

// talk forwards a command to the selected cameras and relays their
// replies. It warns (like the original, "Failed connecting to X.") for each
// selected camera that is not connected, and with error=<node>,<message>
// for each camera whose command could not end normally (it disconnected or
// timed out). After all cameras ended it writes filename_bundle when any
// camera wrote a file. It finishes `:` when at least one camera finished
// the command successfully, and fails when none did (the original always
// finished; a camera's own failure is relayed as a warning either way).
//
// The common talk, one camera and nothing to warn about, is started by
// TryStart (talkfast.go) without a goroutine of its own; talk runs the
// others, and that one when TryStart cannot send at once.
func (a *Actor) talk(ctx context.Context, cmd *opscore.Command) {
	args, err := parseTalkArgs(cmd.Args)
	switch {
	case err != nil:
		a.usageError(cmd, "%s: %v", cmd.Verb, err)
		return
	case args.Help:
		def, _ := lookupCommand(cmd.Verb)
		writeHelp(cmd, a.usageText(def))
		cmd.Finish()
		return
	case len(args.Words) == 0:
		a.usageError(cmd, "No camera command given.")
		return
	}
	spec := a.currentSpec()
	type target struct {
		name   string
		client *device.Client
	}
	var targets []target
	for _, n := range a.selection(cmd, spec, args.Names, args.Category) {
		c := a.device(n)
		if c == nil || !c.Connected() {
			cmd.Write(opscore.Warning, text("Failed connecting to %s.", n))
			continue
		}
		targets = append(targets, target{n, c})
	}
	if len(targets) == 0 {
		a.fail(cmd, "No camera could be commanded.")
		return
	}
	t := newTalkRun(a, ctx, cmd, args.CameraCommand(), len(targets))
	timeout := commandTimeout(spec)
	run := func(name string, c *device.Client) {
		if t.exposing {
			a.cams.busy.begin(name)
			defer a.cams.busy.end(name)
		}
		ended := false // by the camera's terminal reply; onReply calls come one at a time
		_, err := c.SendWithTimeout(ctx, t.camCmd, timeout, t.onReply(name, &ended))
		t.after(name, ended, err)
	}
	if len(targets) == 1 {
		run(targets[0].name, targets[0].client) // no goroutine hop for a single camera
		return
	}
	var wg sync.WaitGroup
	for _, tg := range targets {
		wg.Go(func() { run(tg.name, tg.client) })
	}
	wg.Wait()
}

// talkRun is one talk command under way: the cameras' outcomes, and the
// files they wrote.
type talkRun struct {
	a        *Actor
	ctx      context.Context
	cmd      *opscore.Command
	camCmd   string
	exposing bool
	// started: TryStart runs the command, so nobody else ends it (the
	// server ends a command that talk returns from without ending it).
	started bool

	mu      sync.Mutex
	files   []any
	good    []string
	bad     []string
	pending int
}

func newTalkRun(a *Actor, ctx context.Context, cmd *opscore.Command, camCmd string, cameras int) *talkRun {
	return &talkRun{a: a, ctx: ctx, cmd: cmd, camCmd: camCmd, exposing: isExpose(camCmd), pending: cameras}
}

// onReply returns the relay of one camera's replies. It runs on that
// camera's reader goroutine (see device.Options.InlineReplies) inside the
// reply's Batch, so that the relayed lines, and the command's end when the
// reply ends the last camera's command, reach the user in one write,
// without waking the command's goroutine first. ended is set at the
// camera's terminal reply.
func (t *talkRun) onReply(name string, ended *bool) func(clu.Reply) {
	return func(r clu.Reply) {
		t.cmd.Batch(func() {
			t.a.cams.busy.observe(name, r)
			lines := relayLines(r)
			writeLines(t.cmd, lines)
			t.a.opts.Metrics.LinesRelayed(len(lines))
			if p, ok := filenameOf(r); ok {
				t.mu.Lock()
				t.files = append(t.files, p)
				t.mu.Unlock()
			}
			if clu.IsTerminal(r.Header.MessageCode) {
				*ended = true
				t.end(name, r.Header.MessageCode == clu.CodeDone)
			}
		})
	}
}

// after handles a camera's command once it is over: one that did not end
// with the camera's terminal reply is a failure, reported unless the user
// is gone.
func (t *talkRun) after(name string, ended bool, err error) {
	switch {
	case ended:
		return
	case t.ctx.Err() != nil:
	case errors.Is(err, device.ErrNotConnected):
		t.cmd.Write(opscore.Warning, text("Failed connecting to %s.", name))
	case err != nil:
		t.cmd.Write(opscore.Warning, opscore.KW("error", name, err.Error()))
	}
	t.end(name, false)
}

// end records one camera's outcome; the last one ends the command.
func (t *talkRun) end(name string, ok bool) {
	t.mu.Lock()
	if ok {
		t.good = append(t.good, name)
	} else {
		t.bad = append(t.bad, name)
	}
	t.pending--
	last := t.pending == 0
	files, good, bad := t.files, t.good, t.bad
	t.mu.Unlock()
	switch {
	case !last:
		return // more cameras to hear from
	case t.ctx.Err() != nil:
		if t.started {
			// The user is gone; as the server ends a command its
			// handler left without a reply.
			t.cmd.Failf("command ended without a reply")
		}
		return
	}
	if len(files) > 0 {
		t.cmd.Write(opscore.Info, opscore.KW("filename_bundle", files...))
	}
	if len(good) == 0 {
		slices.Sort(bad)
		t.a.fail(t.cmd, "Command %q failed on every camera (%s).", t.camCmd, strings.Join(bad, ", "))
		return
	}
	t.cmd.Finish()
}
