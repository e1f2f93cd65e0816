package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	v1 "github.com/sdss/fliswarm/api/v1"
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
		{"logs", "NODE", "Outputs the last lines of a camera container's output.", func(fs *pflag.FlagSet) {
			fs.Int("tail", DefaultLogLines, "How many of the last `LINES` (at most 200).")
		}, (*Actor).logs}, // logs.go
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
func (a *Actor) actorName() string { return actorName(a.currentSpec()) }

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

// selectedNodes parses a command that takes no arguments and selects
// nodes with -n/-c (reconnect, reboot): it returns the options, the spec
// and the selected enabled nodes, or ok false when the command has
// already been answered (a usage error, or no node selected).
func (a *Actor) selectedNodes(cmd *opscore.Command) (fs *pflag.FlagSet, spec *v1.Swarm, nodes []string, ok bool) {
	if fs, ok = a.parseNoArgs(cmd); !ok {
		return nil, nil, nil, false
	}
	names, _ := fs.GetString("names")
	category, _ := fs.GetString("category")
	spec = a.currentSpec()
	if nodes = a.selection(cmd, spec, names, category); len(nodes) == 0 {
		a.fail(cmd, "No enabled node selected.")
		return nil, nil, nil, false
	}
	return fs, spec, nodes, true
}

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
