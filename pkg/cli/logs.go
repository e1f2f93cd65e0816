package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/camlog"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/engine"
)

// logsEngineTimeout bounds each engine call of `logs` without a daemon
// (connecting, inspecting, the log request itself), so that an engine
// that does not answer ends the command in seconds.
const logsEngineTimeout = 5 * time.Second

func newLogsCmd(g *globals) *cobra.Command {
	var (
		categories                   []string
		follow, previous, timestamps bool
		tail                         int
		since                        string
	)
	cmd := &cobra.Command{
		Use:   "logs NODE... [--category CATEGORY]",
		Short: "Print a camera container's output (-f: and follow it)",
		Long: `Print what the camera container of each node named (or of each enabled
node of the categories given) wrote to stdout and stderr, as "docker logs"
would on the node. With several nodes, each line starts with "<node> | "
and lines are printed as they come. Which container run is shown goes to
stderr first, one line per node.

--previous shows the run before the current one: the crashed run of a
camera fliswarm restarted in place, or the camera a rollout replaced
(kept stopped as <container>-previous), whichever ended last.

The daemon, when one runs, reads the logs through its own engine
connections; otherwise fliswarm connects to each node's engine itself.

  fliswarm logs gfa1 -f --tail 20
  fliswarm logs --category gfa --since 10m
  fliswarm logs gfa3 --previous`,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			nodes, err := logsNodes(l.Spec, args, categories)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			req := control.LogsRequest{Nodes: nodes, Tail: tail, Follow: follow, Previous: previous}
			if req.Since, err = parseSince(since, time.Now()); err != nil {
				return withCode(ExitUsage, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			p := &logPrinter{g: g, prefix: len(nodes) > 1, timestamps: timestamps}
			if pid := daemon.Running(g.pidPath()); pid != 0 {
				err := control.NewClient(daemon.SocketPath(g.runDir)).Logs(ctx, req, p.print)
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("asking the daemon (pid %d): %w", pid, err))
				}
			} else if err := logsDirect(ctx, l.Spec, req, p.print); err != nil {
				return withCode(ExitFailure, err)
			}
			if len(p.failed) > 0 {
				return withCode(ExitFailure, fmt.Errorf("the output of %s ended with an error", strings.Join(p.failed, ", ")))
			}
			return nil
		},
	}
	f := cmd.Flags()
	// -c is the configuration file for every command: the category has
	// no short flag.
	f.StringSliceVar(&categories, "category", nil, "comma-separated categories: every enabled node of each")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines until interrupted (Ctrl-C)")
	f.IntVar(&tail, "tail", -1, "print only the last N lines of each node (-1: all)")
	f.StringVar(&since, "since", "", "only lines newer than a duration ago (10m, 1h) or a time (RFC 3339)")
	f.BoolVar(&previous, "previous", false, "show the camera's previous instance (after a crash or a rollout)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "start each line with the time the engine received it")
	return cmd
}

// logsNodes resolves the nodes named and the categories' enabled nodes,
// in the order given, each once.
func logsNodes(spec *v1.Swarm, names, categories []string) ([]string, error) {
	var out []string
	for _, n := range names {
		if _, ok := spec.Nodes[n]; !ok {
			return nil, fmt.Errorf("unknown node %q (configured: %s)", n, strings.Join(spec.NodeNames(), ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, c := range categories {
		found := false
		for _, n := range spec.NodeNames() {
			if spec.Nodes[n].Category == c && spec.IsEnabled(n) {
				found = true
				if !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("no enabled node in category %q", c)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("name a node or give --category")
	}
	return out, nil
}

// parseSince reads --since: a duration before now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a positive duration (10m, 1h30m) or an RFC 3339 time", s)
}

// logsDirect reads the logs from each node's engine without a daemon.
func logsDirect(ctx context.Context, spec *v1.Swarm, req control.LogsRequest, fn func(control.LogRecord) error) error {
	var srcs []camlog.Source
	for _, n := range req.Nodes {
		if !spec.IsEnabled(n) {
			return fmt.Errorf("%s is not enabled", n)
		}
		conn := spec.EngineConnection(n)
		c, err := engine.New(n, conn.Address, engine.OptionsFor(conn, engine.Options{Timeout: logsEngineTimeout}))
		if err != nil {
			return err
		}
		defer c.Close()
		srcs = append(srcs, camlog.Source{Node: n, Container: spec.ContainerNameFor(n), Engine: c})
	}
	s, err := camlog.Open(ctx, srcs, camlog.Request{Tail: req.Tail, Since: req.Since, Follow: req.Follow, Previous: req.Previous})
	if err != nil {
		if engine.IsUnreachable(err) {
			return fmt.Errorf("%w (no daemon runs: fliswarm connected to the engine itself)", err)
		}
		return err
	}
	nodes, ins := s.Instances()
	for i, n := range nodes {
		if err := fn(control.LogRecord{Node: n, Instance: ins[i].Description}); err != nil {
			return err
		}
	}
	return s.Run(ctx, func(node string, l engine.LogLine) error {
		return fn(control.LogRecord{Node: node, Time: l.Time, Stream: l.Stream, Text: l.Text})
	}, func(node string, err error) {
		if err != nil {
			_ = fn(control.LogRecord{Node: node, Error: err.Error()})
		}
	})
}

// logPrinter prints log records: lines to stdout, which run each node
// shows and a node's failure to stderr.
type logPrinter struct {
	g          *globals
	prefix     bool
	timestamps bool
	mu         sync.Mutex
	failed     []string
}

func (p *logPrinter) print(r control.LogRecord) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.Instance != "":
		fmt.Fprintf(p.g.stderr, "==> %s: %s\n", r.Node, r.Instance)
	case r.Error != "":
		p.failed = append(p.failed, r.Node)
		fmt.Fprintf(p.g.stderr, "%s: %s\n", r.Node, r.Error)
	default:
		var b strings.Builder
		if p.prefix {
			b.WriteString(r.Node + " | ")
		}
		if p.timestamps {
			b.WriteString(r.Time.UTC().Format(time.RFC3339Nano) + " ")
		}
		b.WriteString(r.Text)
		b.WriteByte('\n')
		_, err := io.WriteString(p.g.stdout, b.String())
		return err
	}
	return nil
}
