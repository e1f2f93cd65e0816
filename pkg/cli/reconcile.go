package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/docker/go-units"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/controllers"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/logging"
)

func newReconcileCmd(g *globals) *cobra.Command {
	var dryRun, force, jsonOut, verbose bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reconcile [NODE...]",
		Short: "Converge the enabled nodes once and wait until every camera runs",
		Long: `Converge every enabled node (or the nodes named) once: create missing
volumes, pull the image, create or recreate the privileged camera container,
remove strays. Waits until every container runs or --timeout passes, prints
one line per node with what it did, and exits 0 only if every node converged.

When a daemon is running, the request goes to it (so two reconciles of one
node never run at once); otherwise fliswarm reconciles by itself.
--dry-run prints the plan and changes nothing.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			nodes := args
			if len(nodes) == 0 {
				nodes = l.Spec.EnabledNodes
			}
			for _, n := range nodes {
				if _, ok := l.Spec.Nodes[n]; !ok {
					return withCode(ExitUsage, fmt.Errorf("unknown node %q (configured: %s)", n, strings.Join(l.Spec.NodeNames(), ", ")))
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			log, flush, _ := logging.New(logging.Options{Console: verbose, Verbose: verbose})
			defer flush()
			ctl := controllers.New(l.Spec, l.Revision, controllers.Options{Logger: log})

			if dryRun {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				plans, errs := ctl.PlanAll(ctx, nodes, force)
				if jsonOut {
					return printJSON(g, plans)
				}
				failed := false
				for i, p := range plans {
					if errs[i] != nil {
						failed = true
						fmt.Fprintf(g.stdout, "%s: cannot plan: %v\n", p.Node, errs[i])
						continue
					}
					for _, line := range p.Lines() {
						fmt.Fprintf(g.stdout, "%s: %s\n", p.Node, line)
					}
				}
				if failed {
					return withCode(ExitFailure, fmt.Errorf("some nodes could not be observed"))
				}
				return nil
			}

			var results []v1.NodeResult
			if pid := daemon.Running(g.pidPath()); pid != 0 {
				// The daemon keeps the deadline; we wait a little longer
				// so that its answer, with each node's last state, arrives.
				cctx, cancel := context.WithTimeout(ctx, timeout+control.ReplyGrace)
				defer cancel()
				results, err = control.NewClient(daemon.SocketPath(g.runDir)).Reconcile(cctx,
					v1.ReconcileRequest{Nodes: nodes, Force: force, Timeout: timeout})
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("asking the daemon (pid %d): %w", pid, err))
				}
			} else {
				if err := ctl.CheckNodes(nodes); err != nil {
					return withCode(ExitFailure, err)
				}
				stopProgress := printPulls(g, ctl.Store())
				rctx, cancel := context.WithTimeout(ctx, timeout)
				results = ctl.ReconcileOnce(rctx, nodes, v1.ConvergeOptions{Force: force})
				cancel()
				stopProgress()
			}
			if jsonOut {
				if err := printJSON(g, results); err != nil {
					return err
				}
			}
			bad := 0
			for _, r := range results {
				if !r.Converged() {
					bad++
				}
				if !jsonOut {
					fmt.Fprintln(g.stdout, resultLine(r))
				}
			}
			if bad > 0 {
				return withCode(ExitFailure, fmt.Errorf("%d of %d nodes did not converge", bad, len(results)))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan of each node and change nothing")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "recreate volumes and containers even when current")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait for every node to converge")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the results as JSON")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log each step to stderr")
	return cmd
}

// printPulls prints a line for each pull under way, at most every few
// seconds per node, until stop is called.
func printPulls(g *globals, store *controllers.Store) (stop func()) {
	ch, cancel := store.Subscribe()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		last := map[string]time.Time{}
		for {
			select {
			case <-done:
				return
			case <-ch:
			}
			for _, st := range store.Status() {
				if p := st.Pull; p != nil && p.Total > 0 && time.Since(last[st.Name]) >= 2*time.Second {
					last[st.Name] = time.Now()
					fmt.Fprintf(g.stdout, "%s: pulling %s: %s of %s (%s)\n", st.Name, p.Image,
						units.HumanSize(float64(p.Current)), units.HumanSize(float64(p.Total)), p.Status)
				}
			}
		}
	}()
	return func() { cancel(); close(done); <-finished }
}

func resultLine(r v1.NodeResult) string {
	var did []string
	for _, a := range r.Actions {
		did = append(did, a.String())
	}
	what := "nothing to do"
	if len(did) > 0 {
		what = strings.Join(did, "; ")
	}
	if r.Converged() {
		id := "NA"
		if r.Status.Container != nil {
			id = r.Status.Container.ShortID()
		}
		return fmt.Sprintf("%s: converged, container %s: %s", r.Node, id, what)
	}
	return fmt.Sprintf("%s: NOT converged: %s (done: %s)", r.Node, r.Error, what)
}

func printJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCmd(g *globals) *cobra.Command {
	var jsonOut bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each node's status (from the daemon, or observed once when none runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var st v1.DaemonStatus
			if pid := daemon.Running(g.pidPath()); pid != 0 {
				s, err := control.NewClient(daemon.SocketPath(g.runDir)).Status(ctx)
				if err != nil {
					return withCode(ExitFailure, fmt.Errorf("asking the daemon (pid %d): %w", pid, err))
				}
				st = s
			} else {
				l, err := g.load()
				if err != nil {
					return err
				}
				ctl := controllers.New(l.Spec, l.Revision, controllers.Options{})
				st.Daemon = v1.DaemonInfo{Running: false, Config: l.Source, Revision: l.Revision}
				st.Nodes = ctl.ObserveAll(ctx, l.Spec.EnabledNodes)
			}
			if jsonOut {
				return printJSON(g, st)
			}
			printStatus(g, st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print the status as JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the answer")
	return cmd
}

func printStatus(g *globals, st v1.DaemonStatus) {
	w := g.stdout
	if st.Daemon.Running {
		fmt.Fprintf(w, "daemon: running (pid %d, version %s, config %s, revision %s, since %s)\n",
			st.Daemon.Pid, st.Daemon.Version, st.Daemon.Config, st.Daemon.Revision, st.Daemon.StartedAt.Format(time.RFC3339))
		if st.Daemon.ConfigError != "" {
			fmt.Fprintf(w, "  configuration edit rejected, running the last good revision:\n    %s\n",
				strings.ReplaceAll(st.Daemon.ConfigError, "\n", "\n    "))
		}
		printHub(w, st.Daemon.Hub)
	} else {
		fmt.Fprintf(w, "daemon: not running (observed once, config %s, revision %s)\n", st.Daemon.Config, st.Daemon.Revision)
	}
	for _, n := range st.Nodes {
		ctr := "no container"
		if n.Container != nil {
			ctr = fmt.Sprintf("container %s %s (restarts %d)", n.Container.ShortID(), n.Container.State, n.Restarts)
			if n.Container.Adopted {
				ctr += " adopted"
			}
		}
		state := "ready"
		if !n.Ready() {
			state = n.Phase
		}
		fmt.Fprintf(w, "%-6s %-18s ping=%s docker=%s camera=%s %s\n", n.Name, state,
			tf(n.Reachable), tf(n.DockerAlive), tf(n.DeviceConnected), ctr)
		if !n.Ready() && n.Message != "" {
			fmt.Fprintf(w, "       %s\n", n.Message)
		}
		if c := n.CrashLoop; c != nil {
			fmt.Fprintf(w, "       CrashLoopBackOff: %d stops in a row, last exit code %d, next start %s (backoff %s)\n",
				c.Restarts, c.LastExitCode, c.NextAttempt.Format("15:04:05.000"), c.Backoff.D())
			for _, l := range c.LastLog {
				fmt.Fprintf(w, "         | %s\n", l)
			}
		}
		if r := n.Rollout; r != nil {
			fmt.Fprintf(w, "       rollout %s: %s\n", r.State, r.Message)
		}
		if im := n.Image; im.LatestDigest != "" || im.RegistryError != "" {
			running := im.Digest
			if running == "" {
				running = "unknown"
			}
			fmt.Fprintf(w, "       image %s: running %s, registry %s", im.Ref, running, im.LatestDigest)
			if im.UpdateWaiting {
				fmt.Fprint(w, " (update waiting)")
			}
			fmt.Fprintln(w)
			if im.RegistryError != "" {
				fmt.Fprintf(w, "       registry: %s\n", im.RegistryError)
			}
		}
		if p := n.Pull; p != nil {
			fmt.Fprintf(w, "       pulling %s: %d of %d bytes\n", p.Image, p.Current, p.Total)
		}
		if d := n.Disk; d != nil {
			fmt.Fprintf(w, "       disk: %s (checked %s)\n", d.Summary(), d.CheckedAt.Local().Format("15:04:05"))
		}
		for _, c := range n.Conditions {
			if !c.Status {
				fmt.Fprintf(w, "       %s: %s: %s\n", c.Type, c.Reason, c.Message)
			}
		}
		if n.LastError != "" {
			fmt.Fprintf(w, "       last error: %s\n", n.LastError)
		}
	}
}

// printHub prints the tron hub connections: fliswarm's own, and tron's
// connection back to the actor port.
func printHub(w io.Writer, h *v1.HubStatus) {
	if h == nil {
		fmt.Fprintf(w, "hub: none configured\n")
		return
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Format(time.RFC3339)
	}
	conn := "down"
	if h.Connected {
		conn = "up since " + when(h.ConnectedSince)
	}
	back := "not connected"
	if h.TronConnected {
		back = "connected"
	}
	fmt.Fprintf(w, "hub: %s connection %s (startNubs accepted %s); tron on the actor port: %s, last connected %s\n",
		h.Addr, conn, when(h.NubsAccepted), back, when(h.TronLastConnected))
}

func tf(b bool) string {
	if b {
		return "T"
	}
	return "F"
}
