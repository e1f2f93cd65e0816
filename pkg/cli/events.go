package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/events"
)

func newEventsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		since  string
		output string
	)
	cmd := &cobra.Command{
		Use:   "events [NODE...]",
		Short: "Show what happened to the nodes, as the daemon recorded it (-f to follow)",
		Long: `Show each node's recent history as the running daemon recorded it, oldest
first, one line each: created, started, adopted, crashed (with the exit code),
backing off, rollout started, halted or put back, image pulled (with its
digest), engine down or back, camera connected or lost, and fliswarm's own
(configuration accepted or rejected, a new image under the tag). The same
event repeated in a row is one line with its count.

The daemon keeps the last events_per_node events of each node in memory (the
configuration's events_per_node, default 200); they are also served as JSON
at /events on the status page's address.`,
		Example: `  fliswarm events gfa1
  fliswarm events --since 1h
  fliswarm events gfa1 gfa2 -f -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" {
				return withCode(ExitUsage, fmt.Errorf("-o: unknown output %q (json, or none for a table)", output))
			}
			req := v1.EventsRequest{Nodes: args, Follow: follow}
			if since != "" {
				t, err := events.ParseSince(since, time.Now())
				if err != nil {
					return withCode(ExitUsage, err)
				}
				req.Since = t
			}
			pid := daemon.Running(g.pidPath())
			if pid == 0 {
				return withCode(ExitNotFound, fmt.Errorf("no daemon is running (%s): events are kept by the running daemon; start it with \"fliswarm start\"", g.pidPath()))
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
			}
			p := newEventPrinter(g.stdout, output == "json")
			err := control.NewClient(daemon.SocketPath(g.runDir)).Events(ctx, req, p.print)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("events (daemon pid %d): %w", pid, err))
			}
			if p.n == 0 && !follow && output == "" {
				fmt.Fprintln(g.stderr, "no events")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "after the events kept, print each new one until interrupted")
	f.StringVar(&since, "since", "", "only events last seen since a time (RFC 3339) or a duration ago (1h, 90s)")
	f.StringVarP(&output, "output", "o", "", "json: one JSON object per line (v1.Event)")
	return cmd
}

// eventPrinter writes events as a table, each line at once (followed
// events come one by one), or as JSON lines.
type eventPrinter struct {
	out  io.Writer
	json *json.Encoder
	n    int
}

const eventRow = "%-19s  %-7s  %-15s  %-6s  %s\n"

func newEventPrinter(out io.Writer, asJSON bool) *eventPrinter {
	p := &eventPrinter{out: out}
	if asJSON {
		p.json = json.NewEncoder(out)
	}
	return p
}

func (p *eventPrinter) print(ev v1.Event) error {
	p.n++
	if p.json != nil {
		return p.json.Encode(ev)
	}
	if p.n == 1 {
		fmt.Fprintf(p.out, eventRow, "LAST SEEN", "TYPE", "REASON", "NODE", "MESSAGE")
	}
	node := ev.Node
	if node == "" {
		node = "-"
	}
	msg := strings.ReplaceAll(ev.Message, "\n", " ")
	if ev.Count > 1 {
		msg += fmt.Sprintf(" (×%d since %s)", ev.Count, ev.Time.Local().Format("15:04:05"))
	}
	_, err := fmt.Fprintf(p.out, eventRow, ev.LastTime.Local().Format("2006-01-02 15:04:05"), ev.Type, ev.Reason, node, msg)
	return err
}
