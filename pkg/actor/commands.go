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
	usage string // arguments, for help and usage errors
	help  string
	run   func(a *Actor, ctx context.Context, cmd *opscore.Command)
}

// commandTable lists the commands in the order help shows them. It is
// filled in init because help reads it.
var commandTable []commandDef

func init() {
	commandTable = []commandDef{
		{"status", "", "Outputs the status of the nodes and containers.", (*Actor).status},
		{"talk", "[-n NAMES] [-c CATEGORY] CAMERA-COMMAND...", "Sends a command to selected or all cameras.", (*Actor).talk},
		{"reconnect", "[-n NAMES] [-c CATEGORY] [-f|--force]", "Recreates volumes and restarts the Docker containers.", (*Actor).reconnect},
		{"disable", "[NODES...] [-a|--all]", "Disables one or multiple cameras/nodes.", (*Actor).disable},
		{"enable", "[NODES...] [-a|--all]", "Enables one or multiple cameras.", (*Actor).enable},
		{"reboot", "[-n NAMES] [-c CATEGORY] [--hard]", "Reboot the NUC computer(s).", (*Actor).reboot},
		{"simulate", "GLOB [--delay SECONDS] [--random] [--stop]", "Simulate images being written to disk.", (*Actor).simulate},
		{"help", "", "Shows the help.", (*Actor).help},
		{"ping", "", "Pings the actor.", (*Actor).ping},
		{"version", "", "Reports the version.", (*Actor).version},
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
		cmd.FailUnknown()
		return
	}
	def.run(a, ctx, cmd)
}

// newFlags returns a flag set that reports errors instead of printing.
func newFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses a command's arguments, failing the command (and
// returning false) on a bad option.
func parseFlags(cmd *opscore.Command, fs *pflag.FlagSet) bool {
	err := fs.Parse(cmd.Args)
	if err == nil {
		return true
	}
	def, _ := lookupCommand(cmd.Verb)
	if errors.Is(err, pflag.ErrHelp) {
		cmd.Failf("usage: %s %s", def.name, def.usage)
	} else {
		cmd.Failf("%s: %v (usage: %s %s)", cmd.Verb, err, def.name, def.usage)
	}
	return false
}

// noArgs fails the command when it got positional arguments it does not
// take.
func noArgs(cmd *opscore.Command, fs *pflag.FlagSet) bool {
	if fs.NArg() == 0 {
		return true
	}
	cmd.Failf("%s: unexpected argument %q", cmd.Verb, fs.Arg(0))
	return false
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

func (a *Actor) status(_ context.Context, cmd *opscore.Command) {
	fs := newFlags("status")
	if !parseFlags(cmd, fs) || !noArgs(cmd, fs) {
		return
	}
	spec := a.currentSpec()
	enabled := a.enabled(spec)
	writeLines(cmd, []line{enabledNodesLine(enabled)})
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
	return lines
}

// ---- talk ----

// shellJoin joins words into one command line that splits back into the
// same words (the camera actor splits it like a shell).
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		switch {
		case w == "":
			quoted[i] = "''"
		case strings.ContainsAny(w, " \t'\"\\"):
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'"'"'`) + "'"
		default:
			quoted[i] = w
		}
	}
	return strings.Join(quoted, " ")
}

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
	fs := newFlags("talk")
	fs.SetInterspersed(false) // everything after the first word is the camera's
	names := fs.StringP("names", "n", "", "")
	category := fs.StringP("category", "c", "", "")
	if !parseFlags(cmd, fs) {
		return
	}
	if fs.NArg() == 0 {
		cmd.Failf("No camera command given.")
		return
	}
	camCmd := shellJoin(fs.Args())
	spec := a.currentSpec()
	timeout := commandTimeout(spec)

	type target struct {
		name   string
		client *device.Client
	}
	var targets []target
	for _, n := range a.selection(cmd, spec, *names, *category) {
		c := a.device(n)
		if c == nil || !c.Connected() {
			cmd.Write(opscore.Warning, text("Failed connecting to %s.", n))
			continue
		}
		targets = append(targets, target{n, c})
	}
	if len(targets) == 0 {
		cmd.Failf("No camera could be commanded.")
		return
	}

	var (
		mu    sync.Mutex
		files []any
		good  []string
		bad   []string
		wg    sync.WaitGroup
	)
	for _, t := range targets {
		wg.Go(func() {
			res, err := t.client.SendWithTimeout(ctx, camCmd, timeout, func(r clu.Reply) {
				writeLines(cmd, relayLines(r))
				if p, ok := filenameOf(r); ok {
					mu.Lock()
					files = append(files, p)
					mu.Unlock()
				}
			})
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, device.ErrNotConnected):
				cmd.Write(opscore.Warning, text("Failed connecting to %s.", t.name))
			case err != nil:
				cmd.Write(opscore.Warning, opscore.KW("error", t.name, err.Error()))
			}
			mu.Lock()
			defer mu.Unlock()
			if err == nil && res.OK() {
				good = append(good, t.name)
			} else {
				bad = append(bad, t.name)
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // the user is gone
	}
	if len(files) > 0 {
		cmd.Write(opscore.Info, opscore.KW("filename_bundle", files...))
	}
	if len(good) == 0 {
		slices.Sort(bad)
		cmd.Failf("Command %q failed on every camera (%s).", camCmd, strings.Join(bad, ", "))
		return
	}
	cmd.Finish()
}

// ---- reconnect ----

// reconnect drops the selected nodes' camera connections, has the
// reconciler converge them (force: volumes and container recreated), then
// reconnects the cameras, waits for each, and reports each node's status.
// It fails naming the nodes that could not be brought back.
func (a *Actor) reconnect(ctx context.Context, cmd *opscore.Command) {
	fs := newFlags("reconnect")
	names := fs.StringP("names", "n", "", "")
	category := fs.StringP("category", "c", "", "")
	force := fs.BoolP("force", "f", false, "")
	if !parseFlags(cmd, fs) || !noArgs(cmd, fs) {
		return
	}
	spec := a.currentSpec()
	nodes := a.selection(cmd, spec, *names, *category)
	if len(nodes) == 0 {
		cmd.Failf("No enabled node selected.")
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
	errs := a.rec.Converge(cctx, nodes, *force)
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
		cmd.Failf("Could not bring back %s.", strings.Join(failed, ", "))
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
	fs := newFlags(cmd.Verb)
	all := fs.BoolP("all", "a", false, "")
	if !parseFlags(cmd, fs) {
		return
	}
	var names []string
	for _, arg := range fs.Args() {
		names = append(names, splitList(arg)...)
	}
	spec := a.currentSpec()
	if *all {
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

// help writes one help line per command. Like CLU's legacy actors, help
// lines are warnings.
func (a *Actor) help(_ context.Context, cmd *opscore.Command) {
	for _, c := range commandTable {
		line := c.name
		if c.usage != "" {
			line += " " + c.usage
		}
		cmd.Write(opscore.Warning, opscore.KW("help", line+": "+c.help))
	}
	cmd.Finish()
}

func (a *Actor) ping(_ context.Context, cmd *opscore.Command) {
	cmd.Finish(opscore.KW("text", "Pong."))
}

func (a *Actor) version(_ context.Context, cmd *opscore.Command) {
	cmd.Finish(opscore.KW("version", opscore.Quoted(a.opts.Version)))
}
