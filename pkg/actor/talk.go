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
	names, category := args.Names, args.Category
	camCmd := args.CameraCommand()
	spec := a.currentSpec()
	timeout := commandTimeout(spec)

	type target struct {
		name   string
		client *device.Client
	}
	var targets []target
	for _, n := range a.selection(cmd, spec, names, category) {
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

	var (
		mu      sync.Mutex
		files   []any
		good    []string
		bad     []string
		pending = len(targets)
		wg      sync.WaitGroup
	)
	// end records one camera's outcome; the last one ends the command.
	// When a camera ends its command, end runs on that camera's reader
	// goroutine (see device.Options.InlineReplies) inside the reply's
	// Batch, so the relayed lines and the command's end reach the user in
	// one write, without waking the command's goroutine first.
	end := func(name string, ok bool) {
		mu.Lock()
		if ok {
			good = append(good, name)
		} else {
			bad = append(bad, name)
		}
		pending--
		last := pending == 0
		mu.Unlock()
		if !last || ctx.Err() != nil {
			return // more cameras to hear from, or the user is gone
		}
		if len(files) > 0 {
			cmd.Write(opscore.Info, opscore.KW("filename_bundle", files...))
		}
		if len(good) == 0 {
			slices.Sort(bad)
			a.fail(cmd, "Command %q failed on every camera (%s).", camCmd, strings.Join(bad, ", "))
			return
		}
		cmd.Finish()
	}
	exposing := isExpose(camCmd)
	run := func(t target) {
		if exposing {
			a.cams.busy.begin(t.name)
			defer a.cams.busy.end(t.name)
		}
		ended := false // by the camera's terminal reply; onReply calls come one at a time
		_, err := t.client.SendWithTimeout(ctx, camCmd, timeout, func(r clu.Reply) {
			cmd.Batch(func() {
				a.cams.busy.observe(t.name, r)
				lines := relayLines(r)
				writeLines(cmd, lines)
				a.opts.Metrics.LinesRelayed(len(lines))
				if p, ok := filenameOf(r); ok {
					mu.Lock()
					files = append(files, p)
					mu.Unlock()
				}
				if clu.IsTerminal(r.Header.MessageCode) {
					ended = true
					end(t.name, r.Header.MessageCode == clu.CodeDone)
				}
			})
		})
		switch {
		case ended:
			return
		case ctx.Err() != nil:
			return
		case errors.Is(err, device.ErrNotConnected):
			cmd.Write(opscore.Warning, text("Failed connecting to %s.", t.name))
		case err != nil:
			cmd.Write(opscore.Warning, opscore.KW("error", t.name, err.Error()))
		}
		end(t.name, false)
	}
	if len(targets) == 1 {
		run(targets[0]) // no goroutine hop for the common single-camera talk
		return
	}
	for _, t := range targets {
		wg.Go(func() { run(t) })
	}
	wg.Wait()
}
