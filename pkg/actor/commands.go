package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// commandDef is one command of the actor.
type commandDef struct {
	name  string
	args  string // positional arguments, for help and usage errors
	help  string
	flags func(fs *pflag.FlagSet) // its options; nil for none
	run   func(a *Actor, ctx context.Context, cmd *opscore.Command)
}

// commandTable lists the commands in the order help shows them. It is
// filled in init because help reads it.
var commandTable []commandDef

func selectionFlags(verb string) func(fs *pflag.FlagSet) {
	return func(fs *pflag.FlagSet) {
		fs.StringP("names", "n", "", "Comma-separated `NAMES` of the nodes to "+verb+".")
		fs.StringP("category", "c", "", "Comma-separated `CATEGORY` of nodes to "+verb+".")
	}
}

func init() {
	commandTable = []commandDef{
		{"status", "", "Outputs the status of the nodes and containers.", nil, (*Actor).status},
		// talk's options are parsed by parseTalkArgs; the flag set is its help.
		{"talk", "CAMERA-COMMAND...", "Sends a command to selected or all cameras.", selectionFlags("command"), (*Actor).talk},
		{"reconnect", "", "Recreates volumes and restarts the Docker containers.", func(fs *pflag.FlagSet) {
			selectionFlags("reconnect")(fs)
			fs.BoolP("force", "f", false, "Remove and recreate the volumes that exist.")
		}, (*Actor).reconnect},
		{"disable", "[NODES]...", "Disables one or multiple cameras/nodes.", func(fs *pflag.FlagSet) {
			fs.BoolP("all", "a", false, "Disable all the nodes.")
		}, (*Actor).disable},
		{"enable", "[NODES]...", "Enables one or multiple cameras.", func(fs *pflag.FlagSet) {
			fs.BoolP("all", "a", false, "Enable all the configured nodes.")
		}, (*Actor).enable},
		{"reboot", "", "Reboot the NUC computer(s).", func(fs *pflag.FlagSet) {
			selectionFlags("reboot")(fs)
			fs.BoolP("hard", "f", false, "Power cycle the computers through the power actor.") // -f as in the original
		}, (*Actor).reboot},
		{"simulate", "GLOB", "Simulate images being written to disk.", func(fs *pflag.FlagSet) {
			fs.Float64("delay", 5, "`SECONDS` between images.")
			fs.Bool("random", false, "Output the images in random order.")
			fs.Bool("stop", false, "Stop the running simulation.")
		}, (*Actor).simulate},
		{"help", "[COMMAND]", "Shows the help.", nil, (*Actor).help},
		{"ping", "", "Pings the actor.", nil, (*Actor).ping},
		{"version", "", "Reports the version.", nil, (*Actor).version},
		{"get_schema", "", "Returns the schema of the actor as a JSON schema.", nil, (*Actor).getSchema}, // keywords.go
		{"keyword", "KEYWORD", "Prints human-readable information about a keyword.", nil, (*Actor).keyword},
	}
}

func lookupCommand(verb string) (commandDef, bool) {
	for _, c := range commandTable {
		if c.name == verb {
			return c, true
		}
	}
	return commandDef{}, false
}

// Handle runs one command; it implements opscore.Handler.
func (a *Actor) Handle(ctx context.Context, cmd *opscore.Command) {
	def, ok := lookupCommand(cmd.Verb)
	if !ok {
		a.fail(cmd, "Command %q not found.", cmd.Verb)
		a.opts.Metrics.CommandDone("unknown", "failed")
		return
	}
	def.run(a, ctx, cmd)
	outcome := "failed"
	switch cmd.Status() {
	case opscore.Done:
		outcome = "done"
	case 0:
		outcome = "running" // ends later (the server ends it if nobody does)
	}
	a.opts.Metrics.CommandDone(cmd.Verb, outcome)
}

// actorName is the actor's own name, the first value of the error
// keyword of a failure that concerns no node.
func (a *Actor) actorName() string {
	if n := a.currentSpec().Actor.Name; n != "" {
		return n
	}
	return v1.DefaultActorName
}

// fail ends a command with `error=<actor>,"<message>"`, the two values the
// keyword dictionary gives error.
func (a *Actor) fail(cmd *opscore.Command, format string, args ...any) {
	cmd.Fail(opscore.KW("error", a.actorName(), fmt.Sprintf(format, args...)))
}

// flagSet returns the command's options, reporting errors instead of
// printing them.
func (d commandDef) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet(d.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if d.flags != nil {
		d.flags(fs)
	}
	return fs
}

// usageText is the command's help as click prints it for a CLU actor:
// usage line, description, options.
func (a *Actor) usageText(d commandDef) []string {
	usage := "Usage: " + a.actorName() + " " + d.name + " [OPTIONS]"
	if d.args != "" {
		usage += " " + d.args
	}
	lines := []string{usage, "", "  " + d.help, "", "Options:"}
	fs := d.flagSet()
	fs.Bool("help", false, "Show this message and exit.")
	for _, l := range strings.Split(strings.TrimRight(fs.FlagUsages(), "\n"), "\n") {
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return lines
}

// writeHelp writes help lines, one help= line each (as warnings, like
// CLU's legacy actors).
func writeHelp(cmd *opscore.Command, lines []string) {
	for _, l := range lines {
		cmd.Write(opscore.Warning, opscore.KW("help", opscore.Quoted(l)))
	}
}

// parse parses a command's options. `--help` writes the command's usage
// and finishes it; a bad option or argument writes the usage and fails
// it. It returns false when the command has been ended.
func (a *Actor) parse(cmd *opscore.Command) (*pflag.FlagSet, bool) {
	def, _ := lookupCommand(cmd.Verb)
	fs := def.flagSet()
	err := fs.Parse(cmd.Args)
	switch {
	case err == nil:
		return fs, true
	case errors.Is(err, pflag.ErrHelp):
		writeHelp(cmd, a.usageText(def))
		cmd.Finish()
	default:
		a.usageError(cmd, "%s: %v", cmd.Verb, err)
	}
	return nil, false
}

// usageError writes the command's usage and fails it with the message.
func (a *Actor) usageError(cmd *opscore.Command, format string, args ...any) {
	def, _ := lookupCommand(cmd.Verb)
	writeHelp(cmd, a.usageText(def))
	a.fail(cmd, format, args...)
}

// parseNoArgs is parse for a command that takes no positional argument.
func (a *Actor) parseNoArgs(cmd *opscore.Command) (*pflag.FlagSet, bool) {
	fs, ok := a.parse(cmd)
	if !ok {
		return nil, false
	}
	if fs.NArg() > 0 {
		a.usageError(cmd, "%s: unexpected argument %q", cmd.Verb, fs.Arg(0))
		return nil, false
	}
	return fs, true
}

func text(format string, args ...any) opscore.Keyword {
	return opscore.KW("text", fmt.Sprintf(format, args...))
}

// writeLines writes lines to a command.
func writeLines(cmd *opscore.Command, lines []line) {
	for _, l := range lines {
		cmd.Write(l.Code, l.Keywords...)
	}
}

// splitList splits comma-separated words, dropping empty ones.
func splitList(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// selectNodes picks the enabled nodes a -n/-c selection names, in enabled
// order: the union of the named nodes and the nodes of the categories
// (comma-separated lists both), or every enabled node when neither is
// given. It returns a warning for each name that is not configured or not
// enabled and each category that matches no enabled node.
func selectNodes(spec *v1.Swarm, enabled []string, names, category string) (selected, warnings []string) {
	nameList, catList := splitList(names), splitList(category)
	if len(nameList) == 0 && len(catList) == 0 {
		return slices.Clone(enabled), nil
	}
	for _, n := range nameList {
		switch _, ok := spec.Nodes[n]; {
		case !ok:
			warnings = append(warnings, fmt.Sprintf("Cannot find node %s.", n))
		case !slices.Contains(enabled, n):
			warnings = append(warnings, fmt.Sprintf("Node %s is disabled.", n))
		}
	}
	for _, c := range catList {
		if !slices.ContainsFunc(enabled, func(n string) bool { return spec.Nodes[n].Category == c }) {
			warnings = append(warnings, fmt.Sprintf("No enabled node in category %s.", c))
		}
	}
	for _, n := range enabled {
		if slices.Contains(nameList, n) || slices.Contains(catList, spec.Nodes[n].Category) {
			selected = append(selected, n)
		}
	}
	return selected, warnings
}

// selection parses -n/-c into the selected nodes, warning the command
// about names it cannot use.
func (a *Actor) selection(cmd *opscore.Command, spec *v1.Swarm, names, category string) []string {
	selected, warnings := selectNodes(spec, a.enabled(spec), names, category)
	for _, w := range warnings {
		cmd.Write(opscore.Warning, opscore.KW("text", w))
	}
	return selected
}

// ---- status ----

func (a *Actor) status(ctx context.Context, cmd *opscore.Command) {
	if _, ok := a.parseNoArgs(cmd); !ok {
		return
	}
	spec := a.currentSpec()
	enabled := a.enabled(spec)
	writeLines(cmd, []line{enabledNodesLine(enabled)})
	cmd.Write(opscore.Info, hubKeyword(a.HubStatus(ctx)))
	if msg := a.configError(); msg != "" {
		cmd.Write(opscore.Warning, a.configErrorKeyword(msg))
	}
	a.writeNodeStatus(cmd, spec, enabled)
	cmd.Finish()
}

func enabledNodesLine(enabled []string) line {
	vals := make([]any, len(enabled))
	for i, n := range enabled {
		vals[i] = n
	}
	return line{Code: opscore.Info, Keywords: []opscore.Keyword{opscore.KW("enabledNodes", vals...)}}
}

// writeNodeStatus writes the status lines of nodes, from the reconciler's
// last observation.
func (a *Actor) writeNodeStatus(cmd *opscore.Command, spec *v1.Swarm, nodes []string) {
	all := a.rec.Status()
	for _, n := range nodes {
		i := slices.IndexFunc(all, func(st v1.NodeStatus) bool { return st.Name == n })
		var st v1.NodeStatus
		if i >= 0 {
			st = all[i]
		} else {
			node := spec.Nodes[n]
			st = v1.NodeStatus{Name: n, Host: node.Host, DockerHost: node.DockerClient}
		}
		writeLines(cmd, nodeStatusLines(spec, st))
		if ok, reason := a.CameraState(n); !ok && a.device(n) != nil {
			cmd.Write(opscore.Warning, text("Camera %s is not connected: %s.", n, strings.TrimSuffix(reason, ".")))
		}
	}
}

// baseImage is the image the original names in its "multiple containers"
// warning: the registry and the image without its tag.
func baseImage(spec *v1.Swarm) string {
	img := spec.Image
	if i := strings.LastIndexByte(img, ':'); i > strings.LastIndexByte(img, '/') {
		img = img[:i]
	}
	if spec.Registry != "" {
		img = spec.Registry + "/" + img
	}
	return img
}

// nodeStatusLines renders one node's status as the original's
// Node.report_status does: warnings first, then node=, then (when its
// Docker engine answers) container= and one volume= per configured
// volume, each after its warning.
//
// Unlike the original, which stops at the first of "not pinging back" and
// "Docker not answering", both facts are reported, because the reconciler
// observed both; and the containers and volumes are reported whenever the
// engine answered.
func nodeStatusLines(spec *v1.Swarm, st v1.NodeStatus) []line {
	var lines []line
	warn := func(format string, args ...any) {
		lines = append(lines, line{Code: opscore.Warning, Keywords: []opscore.Keyword{text(format, args...)}})
	}
	debug := func(kw opscore.Keyword) {
		lines = append(lines, line{Code: opscore.Debug, Keywords: []opscore.Keyword{kw}})
	}
	host, dockerHost := st.Host, st.DockerHost
	if n, ok := spec.Nodes[st.Name]; ok {
		if host == "" {
			host = n.Host
		}
		if dockerHost == "" {
			dockerHost = n.DockerClient
		}
	}

	switch {
	case st.ObservedAt.IsZero() && !st.Reachable && !st.DockerAlive:
		warn("Node %s has not been checked yet.", host)
	default:
		if !st.Reachable {
			warn("Node %s is not pinging back.", host)
		}
		if !st.DockerAlive {
			warn("Docker client on node %s is not connected.", host)
		}
	}
	lines = append(lines, line{Code: opscore.Info, Keywords: []opscore.Keyword{
		opscore.KW("node", st.Name, host, dockerHost, st.Reachable, st.DockerAlive),
	}})
	if !st.DockerAlive {
		return lines
	}

	c := st.Container
	switch {
	case c == nil || c.ID == "" || (c.State != "" && c.State != "running"):
		warn("No containers running on %s.", host)
		debug(opscore.KW("container", st.Name, opscore.NA))
	case c.Count > 1:
		warn("Multiple containers with image %s running on node %s.", baseImage(spec), host)
		debug(opscore.KW("container", st.Name, opscore.NA))
	default:
		debug(opscore.KW("container", st.Name, c.ShortID()))
		if c.Adopted {
			// Not in the original's dictionary: a text line, so that
			// container= keeps its values.
			debug(text("%s: container %s was not created by fliswarm; it runs the spec and was adopted.", st.Name, c.ShortID()))
		}
	}

	for _, vname := range spec.VolumeNames() {
		i := slices.IndexFunc(st.Volumes, func(v v1.VolumeStatus) bool { return v.Name == vname })
		if i < 0 || !st.Volumes[i].Exists {
			warn("Volume %s not present in %s.", vname, st.Name)
			debug(opscore.KW("volume", st.Name, vname, false, opscore.NA))
			continue
		}
		dev := st.Volumes[i].Device
		if dev == "" {
			dev = opscore.NA
		}
		debug(opscore.KW("volume", st.Name, vname, true, dev))
	}
	return append(lines, imageLines(st)...)
}

// imageLines say, with image_update_interval set, which image digest the
// node runs and whether an update waits; as text, since tron's
// dictionary has no keyword for it.
func imageLines(st v1.NodeStatus) []line {
	var lines []line
	img := st.Image
	if img.RegistryError != "" {
		lines = append(lines, line{Code: opscore.Warning, Keywords: []opscore.Keyword{
			text("Cannot read the digest of %s from the registry: %s.", img.Ref, strings.TrimSuffix(img.RegistryError, "."))}})
	}
	if img.LatestDigest == "" {
		return lines
	}
	running := "an image of unknown digest"
	if img.Digest != "" {
		running = shortDigest(img.Digest)
	}
	state := "up to date"
	if img.UpdateWaiting {
		state = "update waiting"
	}
	return append(lines, line{Code: opscore.Info, Keywords: []opscore.Keyword{
		text("Node %s runs %s; %s is %s at the registry (%s).", st.Name, running, img.Ref, shortDigest(img.LatestDigest), state)}})
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

// ---- talk ----

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
			a.busy.begin(t.name)
			defer a.busy.end(t.name)
		}
		ended := false // by the camera's terminal reply; onReply calls come one at a time
		_, err := t.client.SendWithTimeout(ctx, camCmd, timeout, func(r clu.Reply) {
			cmd.Batch(func() {
				a.busy.observe(t.name, r)
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

// ---- reconnect ----

// reconnect drops the selected nodes' camera connections, has the
// reconciler redeploy them (the image pulled and the container replaced,
// each step reported as it is taken; force: the volumes recreated too),
// then reconnects the cameras, waits for each, and reports each node's
// status. It fails naming the nodes that could not be brought back.
func (a *Actor) reconnect(ctx context.Context, cmd *opscore.Command) {
	fs, ok := a.parseNoArgs(cmd)
	if !ok {
		return
	}
	names, _ := fs.GetString("names")
	category, _ := fs.GetString("category")
	force, _ := fs.GetBool("force")
	spec := a.currentSpec()
	nodes := a.selection(cmd, spec, names, category)
	if len(nodes) == 0 {
		a.fail(cmd, "No enabled node selected.")
		return
	}

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

// ---- enable / disable ----

func (a *Actor) disable(_ context.Context, cmd *opscore.Command) { a.setEnabled(cmd, false) }
func (a *Actor) enable(_ context.Context, cmd *opscore.Command)  { a.setEnabled(cmd, true) }

// setEnabled enables or disables nodes at run time, warning "Cannot find
// node X." for a name that is not configured, then reports enabledNodes.
// `disable --all` disables every enabled node; `enable --all` enables
// the spec's enabled_nodes and every node enabled by name since the start,
// which is what the original's node list held.
func (a *Actor) setEnabled(cmd *opscore.Command, on bool) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	all, _ := fs.GetBool("all")
	var names []string
	for _, arg := range fs.Args() {
		names = append(names, splitList(arg)...)
	}
	spec := a.currentSpec()
	if all {
		if on {
			names = slices.Clone(spec.EnabledNodes)
			a.mu.Lock()
			for n := range a.runtimeEnabled {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			a.mu.Unlock()
		} else {
			names = a.rec.Enabled()
		}
	}
	for _, n := range names {
		if !a.rec.SetEnabled(n, on) {
			cmd.Write(opscore.Warning, text("Cannot find node %s.", n))
			continue
		}
		if on {
			a.mu.Lock()
			a.runtimeEnabled[n] = true
			a.mu.Unlock()
		}
	}
	a.syncDevices()
	writeLines(cmd, []line{enabledNodesLine(a.enabled(spec))})
	cmd.Finish()
}

// ---- help, ping, version ----

// help writes the actor's help as click does for a CLU actor, one help=
// line per line of text: with no argument the usage and one line per
// command, with a command's name that command's usage and options.
func (a *Actor) help(_ context.Context, cmd *opscore.Command) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	switch fs.NArg() {
	case 0:
	case 1:
		def, ok := lookupCommand(fs.Arg(0))
		if !ok {
			a.usageError(cmd, "No such command %q.", fs.Arg(0))
			return
		}
		writeHelp(cmd, a.usageText(def))
		cmd.Finish()
		return
	default:
		a.usageError(cmd, "help: unexpected argument %q", fs.Arg(1))
		return
	}
	lines := []string{
		"Usage: " + a.actorName() + " [OPTIONS] COMMAND [ARGS]...", "",
		"Options:", "  --help  Show this message and exit.", "",
		"Commands:",
	}
	width := 0
	for _, c := range commandTable {
		width = max(width, len(c.name))
	}
	for _, c := range commandTable {
		lines = append(lines, fmt.Sprintf("  %-*s  %s", width, c.name, c.help))
	}
	writeHelp(cmd, lines)
	cmd.Finish()
}

func (a *Actor) ping(_ context.Context, cmd *opscore.Command) {
	cmd.Finish(opscore.KW("text", "Pong."))
}

func (a *Actor) version(_ context.Context, cmd *opscore.Command) {
	cmd.Finish(opscore.KW("version", opscore.Quoted(a.opts.Version)))
}
