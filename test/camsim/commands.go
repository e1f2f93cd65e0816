package camsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sdss/fliswarm/pkg/clu"
)

// Limits on test-knob arguments, so one command cannot run away.
const (
	maxCount   = 1000
	maxFlood   = 1_000_000
	maxExpTime = 3600.0
)

// errNoReply tells the dispatcher that the command wrote its own terminal
// reply, or deliberately never will (sim-hang).
var errNoReply = errors.New("no terminal reply")

// usageError is a command line the command cannot parse; the reply is a
// "w" with the command's usage, then "f".
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// cameraError is a failure of the camera itself, reported as
// error={camera, error}.
type cameraError struct {
	camera string
	err    error
}

func (e *cameraError) Error() string { return e.camera + ": " + e.err.Error() }
func (e *cameraError) Unwrap() error { return e.err }

// call is one running command.
type call struct {
	ss   *session
	cam  *camera
	id   int
	args []string
}

// reply sends a non-terminal reply of the command; it fails once the
// client is gone.
func (c *call) reply(code string, data clu.Object) error { return c.ss.send(c.id, code, false, data) }

type command struct {
	usage string // arguments, shown in help and on a usage error
	help  string
	run   func(ctx context.Context, c *call) (clu.Object, error)
	// async commands run beside the connection's later commands; the
	// others run in order, so quick commands answer in the order sent.
	async bool
}

var commands map[string]command

func init() {
	// Set in init because help lists this very table.
	commands = map[string]command{
		"status":      {"[CAMERA]", "Reports the status of the camera.", runStatus, false},
		"expose":      {"[CAMERA] EXPTIME [--count N] [--filename NAME] [--object|--flat|--dark|--bias]", "Takes exposures and writes FITS files.", runExpose, true},
		"temperature": {"[CAMERA] [SETPOINT]", "Reports the CCD temperature, or sets the cooler setpoint.", runTemperature, false},
		"binning":     {"[CAMERA] [H [V]]", "Reports or sets the binning.", runBinning, false},
		"ping":        {"", "Pings the actor.", runPing, false},
		"version":     {"", "Reports the version.", runVersion, false},
		"help":        {"", "Lists the commands.", runHelp, false},
		"sim-exit":    {"CODE", "Test knob: the simulator exits with CODE after replying.", runExit, false},
		"sim-flood":   {"N", "Test knob: emits N informational replies, then finishes.", runFlood, true},
		"sim-hang":    {"", "Test knob: never finishes.", runHang, true},
	}
}

// isAsync reports whether the command of a line runs beside the
// connection's later commands.
func isAsync(line string) bool {
	_, cmd, err := clu.ParseCommand(line)
	if err != nil {
		return false
	}
	name, _, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	return commands[name].async
}

func usageLine(name string) string {
	return strings.TrimSpace(name + " " + commands[name].usage)
}

// handleLine runs one command line and writes all its replies: ">", the
// command's own replies, then ":" or "f" (except for sim-hang).
func (ss *session) handleLine(ctx context.Context, line string) {
	id, cmd, err := clu.ParseCommand(line)
	if err != nil {
		return // empty line
	}
	ss.send(id, clu.CodeRunning, true, nil)
	words := strings.Fields(cmd)
	if len(words) == 0 {
		ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: "empty command"}})
		return
	}
	name := words[0]
	cmdDef, ok := commands[name]
	if !ok {
		ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: "unknown command " + strconv.Quote(clip(name, 64))}})
		return
	}
	c := &call{ss: ss, cam: ss.srv.cam, id: id, args: words[1:]}
	final, err := cmdDef.run(ctx, c)
	var (
		uerr *usageError
		cerr *cameraError
	)
	switch {
	case err == nil:
		ss.send(id, clu.CodeDone, false, final)
	case errors.Is(err, errNoReply):
	case errors.As(err, &uerr):
		ss.send(id, clu.CodeWarning, false, clu.Object{{Key: "help", Value: []any{"Usage: " + usageLine(name)}}})
		ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: uerr.msg}})
	case errors.As(err, &cerr):
		ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: clu.Object{
			{Key: "camera", Value: cerr.camera}, {Key: "error", Value: cerr.err.Error()},
		}}})
	default:
		ss.send(id, clu.CodeFailed, false, clu.Object{{Key: "error", Value: err.Error()}})
	}
}

// clip shortens client-supplied text quoted back in an error.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// parseFlags parses options anywhere among the arguments and returns the
// positional ones. Negative numbers (a temperature setpoint) are
// positional, not flags.
func parseFlags(name string, args []string, define func(*pflag.FlagSet)) ([]string, error) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if define != nil {
		define(fs)
	}
	// pflag would read "-10" as the shorthand flags 1 and 0: hide negative
	// numbers behind placeholders (client arguments starting with the
	// mark are refused), and restore them afterwards.
	const mark = "\x00"
	hidden := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, mark) {
			return nil, usagef("control character in argument")
		}
		hidden[i] = a
		if len(a) > 1 && a[0] == '-' && (a[1] >= '0' && a[1] <= '9' || a[1] == '.') {
			hidden[i] = mark + strconv.Itoa(i)
		}
	}
	if err := fs.Parse(hidden); err != nil {
		msg := err.Error()
		for i := len(hidden) - 1; i >= 0; i-- { // "\x0012" before "\x001"
			if hidden[i] != args[i] {
				msg = strings.ReplaceAll(msg, hidden[i], args[i])
			}
		}
		return nil, usagef("%s", clip(msg, 200))
	}
	out := fs.Args()
	for i, a := range out {
		if n, ok := strings.CutPrefix(a, mark); ok {
			j, _ := strconv.Atoi(n)
			out[i] = args[j]
		}
	}
	return out, nil
}

// positional parses the arguments of a command that takes the options
// define sets, then optional camera names followed by numbers: it checks
// that every name is this camera and returns the numbers.
func (c *call) positional(name string, define func(*pflag.FlagSet)) ([]float64, error) {
	args, err := parseFlags(name, c.args, define)
	if err != nil {
		return nil, err
	}
	var nums []float64
	for _, a := range args {
		f, err := strconv.ParseFloat(a, 64)
		if err != nil {
			if len(nums) > 0 {
				return nil, usagef("camera names must come before the values")
			}
			if a != c.cam.name {
				return nil, usagef("unknown camera %s", strconv.Quote(clip(a, 64)))
			}
			continue
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, usagef("bad number %s", strconv.Quote(clip(a, 64)))
		}
		nums = append(nums, f)
	}
	return nums, nil
}

func runStatus(_ context.Context, c *call) (clu.Object, error) {
	nums, err := c.positional("status", nil)
	if err != nil {
		return nil, err
	}
	if len(nums) > 0 {
		return nil, usagef("status takes no values")
	}
	c.reply(clu.CodeInfo, clu.Object{{Key: "status", Value: c.cam.status()}})
	return nil, nil
}

func runPing(_ context.Context, c *call) (clu.Object, error) {
	if len(c.args) > 0 {
		return nil, usagef("ping takes no arguments")
	}
	return clu.Object{{Key: "text", Value: "Pong."}}, nil
}

func runVersion(_ context.Context, c *call) (clu.Object, error) {
	if len(c.args) > 0 {
		return nil, usagef("version takes no arguments")
	}
	return clu.Object{{Key: "version", Value: Version}}, nil
}

func runHelp(_ context.Context, c *call) (clu.Object, error) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := []any{"Commands:"}
	for _, n := range names {
		lines = append(lines, fmt.Sprintf("  %s: %s", usageLine(n), commands[n].help))
	}
	c.reply(clu.CodeInfo, clu.Object{{Key: "help", Value: lines}})
	return nil, nil
}

func runTemperature(_ context.Context, c *call) (clu.Object, error) {
	nums, err := c.positional("temperature", nil)
	if err != nil {
		return nil, err
	}
	switch len(nums) {
	case 0:
	case 1:
		if err := c.cam.setTemperature(nums[0]); err != nil {
			return nil, &cameraError{c.cam.name, err}
		}
	default:
		return nil, usagef("temperature takes at most one setpoint")
	}
	ccd, _ := c.cam.temps()
	c.reply(clu.CodeInfo, clu.Object{{Key: "temperature", Value: clu.Object{
		{Key: "camera", Value: c.cam.name}, {Key: "ccd_temp", Value: ccd},
	}}})
	return nil, nil
}

func runBinning(_ context.Context, c *call) (clu.Object, error) {
	nums, err := c.positional("binning", nil)
	if err != nil {
		return nil, err
	}
	if len(nums) > 2 {
		return nil, usagef("binning takes at most two values")
	}
	if len(nums) > 0 {
		ints := make([]int, len(nums))
		for i, f := range nums {
			if f != math.Trunc(f) || f < 1 || f > 16 {
				return nil, usagef("binning must be an integer from 1 to 16")
			}
			ints[i] = int(f)
		}
		if len(ints) == 1 {
			ints = append(ints, ints[0])
		}
		if err := c.cam.setBinning(ints[0], ints[1]); err != nil {
			return nil, &cameraError{c.cam.name, err}
		}
	}
	h, v := c.cam.binning()
	c.reply(clu.CodeInfo, clu.Object{{Key: "binning", Value: clu.Object{
		{Key: "camera", Value: c.cam.name}, {Key: "horizontal", Value: h}, {Key: "vertical", Value: v},
	}}})
	return nil, nil
}

// parseExpose parses the arguments of expose.
func (c *call) parseExpose() (exposure, error) {
	var (
		e                       = exposure{count: 1}
		object, flat, dark, bia bool
	)
	nums, err := c.positional("expose", func(fs *pflag.FlagSet) {
		fs.IntVarP(&e.count, "count", "c", 1, "")
		fs.StringVarP(&e.filename, "filename", "f", "", "")
		fs.BoolVar(&object, "object", false, "")
		fs.BoolVar(&flat, "flat", false, "")
		fs.BoolVar(&dark, "dark", false, "")
		fs.BoolVar(&bia, "bias", false, "")
	})
	if err != nil {
		return e, err
	}
	e.imageType = "object"
	n := 0
	for t, set := range map[string]bool{"object": object, "flat": flat, "dark": dark, "bias": bia} {
		if set {
			e.imageType = t
			n++
		}
	}
	switch {
	case n > 1:
		return e, usagef("--object, --flat, --dark and --bias exclude each other")
	case len(nums) > 1:
		return e, usagef("expose takes one exposure time")
	case len(nums) == 0 && !bia:
		return e, usagef("missing exposure time")
	case len(nums) == 1 && (nums[0] < 0 || nums[0] > maxExpTime):
		return e, usagef("exposure time must be from 0 to %v s", maxExpTime)
	case e.count < 1 || e.count > maxCount:
		return e, usagef("--count must be from 1 to %d", maxCount)
	case e.filename != "" && e.count > 1:
		return e, usagef("--filename needs --count 1")
	case e.filename != "" && !validBaseName(e.filename):
		return e, usagef("--filename must be a plain file name")
	}
	if len(nums) == 1 && !bia {
		e.expTime = nums[0]
	}
	return e, nil
}

// validBaseName accepts a file name that stays inside the image
// directory and is not hidden.
func validBaseName(s string) bool {
	if s == "" || len(s) > 255 || strings.HasPrefix(s, ".") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 32 || s[i] > 126 || s[i] == '/' || s[i] == '\\' {
			return false
		}
	}
	return true
}

func runExpose(ctx context.Context, c *call) (clu.Object, error) {
	e, err := c.parseExpose()
	if err != nil {
		return nil, err
	}
	if err := c.cam.begin(); err != nil {
		return nil, &cameraError{c.cam.name, err}
	}
	defer c.cam.end()
	state := func(st exposureState, errMsg string) clu.Object {
		return clu.Object{{Key: "exposure_state", Value: clu.Object{
			{Key: "camera", Value: c.cam.name},
			{Key: "state", Value: st.state},
			{Key: "image_type", Value: e.imageType},
			{Key: "exposure_time", Value: e.expTime},
			{Key: "remaining_time", Value: st.remaining},
			{Key: "current_stack", Value: st.current},
			{Key: "n_stack", Value: e.count},
			{Key: "error", Value: errMsg},
		}}}
	}
	for k := 1; k <= e.count; k++ {
		path, err := c.cam.expose(ctx, e, k, func(st exposureState) { c.reply(clu.CodeInfo, state(st, "")) })
		if err != nil {
			st := exposureState{state: "failed", current: k}
			if ctx.Err() != nil {
				st.state = "aborted"
			}
			c.reply(clu.CodeError, state(st, err.Error()))
			return nil, &cameraError{c.cam.name, err}
		}
		c.reply(clu.CodeInfo, clu.Object{{Key: "filename", Value: clu.Object{
			{Key: "camera", Value: c.cam.name}, {Key: "filename", Value: path},
		}}})
	}
	return nil, nil
}

// intArg parses the single integer argument of a test knob.
func (c *call) intArg(lo, hi int) (int, error) {
	if len(c.args) != 1 {
		return 0, usagef("expected one integer argument")
	}
	n, err := strconv.Atoi(c.args[0])
	if err != nil || n < lo || n > hi {
		return 0, usagef("argument must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

func runExit(_ context.Context, c *call) (clu.Object, error) {
	code, err := c.intArg(0, 255)
	if err != nil {
		return nil, err
	}
	c.ss.send(c.id, clu.CodeDone, false, clu.Object{{Key: "text", Value: fmt.Sprintf("Exiting with code %d.", code)}})
	c.ss.srv.requestExit(code)
	return nil, errNoReply
}

// runFlood emits n replies `text="flood k"`, written in batches of about
// 32 KiB so that the simulator floods much faster than any relay reads.
func runFlood(ctx context.Context, c *call) (clu.Object, error) {
	n, err := c.intArg(0, maxFlood)
	if err != nil {
		return nil, err
	}
	// Every line is the marshalled reply with an empty text and "flood k"
	// spliced into it: `...{"text":""}}` -> `...{"text":"flood k"}}`.
	b, err := MarshalReply(clu.Reply{Header: c.ss.header(c.id, clu.CodeInfo, false),
		Data: clu.Object{{Key: "text", Value: ""}}})
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(nil), b[:len(b)-3]...)
	const batch = 32 << 10
	buf := make([]byte, 0, batch+256)
	for k := 1; k <= n; k++ {
		buf = append(buf, prefix...)
		buf = append(buf, "flood "...)
		buf = strconv.AppendInt(buf, int64(k), 10)
		buf = append(buf, "\"}}\n"...)
		if len(buf) >= batch || k == n {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := c.ss.writeRaw(buf); err != nil {
				return nil, err
			}
			buf = buf[:0]
		}
	}
	return nil, nil
}

func runHang(ctx context.Context, c *call) (clu.Object, error) {
	if len(c.args) > 0 {
		return nil, usagef("sim-hang takes no arguments")
	}
	<-ctx.Done()
	return nil, errNoReply
}
