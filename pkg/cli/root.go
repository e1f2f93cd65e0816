package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/version"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1 // the command ran and failed (not converged, command failed)
	ExitUsage    = 2 // bad flags or arguments
	ExitConfig   = 3 // the configuration cannot be accepted
	ExitNotFound = 4 // no daemon runs where one is needed
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error { return &exitError{code: code, err: err} }

// globals are the flags every command shares.
type globals struct {
	configPath string
	nodes      []string
	runDir     string
	stdout     io.Writer
	stderr     io.Writer
}

func (g *globals) load() (*config.Loaded, error) {
	opts := config.Options{Path: g.configPath}
	if g.nodes != nil {
		opts.Nodes = g.nodes
	}
	l, err := config.Load(opts)
	if err != nil {
		return nil, withCode(ExitConfig, err)
	}
	for _, w := range l.Warnings {
		fmt.Fprintln(g.stderr, "warning:", w)
	}
	return l, nil
}

func (g *globals) pidPath() string { return daemon.PidPath(g.runDir) }

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "fliswarm",
		Short: "Keep a flicamera container running on every camera node, and relay commands to the cameras",
		Long: `fliswarm keeps one privileged flicamera container running on every enabled
node computer and is itself an actor: tron and operators send it commands on
its actor port, and it forwards them to one or all cameras and relays every
reply back.

Edit the configuration and let the daemon converge, or run "fliswarm
reconcile" once.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.configPath, "config", "c", "", "configuration file (default: the embedded default configuration)")
	pf.StringSliceVar(&g.nodes, "nodes", nil, "comma-separated nodes to enable instead of the configuration's enabled_nodes")
	pf.StringVar(&g.runDir, "run-dir", daemon.RunDir(), "directory of the pid file and control socket ($FLISWARM_RUN_DIR)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if !cmd.Flags().Changed("nodes") {
			g.nodes = nil
		} else if g.nodes == nil {
			g.nodes = []string{}
		}
		return nil
	}
	root.AddCommand(
		newStartCmd(g), newStopCmd(g), newRestartCmd(g),
		newReconcileCmd(g), newStatusCmd(g), newConfigCmd(g),
		newSendCmd(g), newEventsCmd(g), newLogsCmd(g), newExportCmd(g), newVersionCmd(g),
	)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return withCode(ExitUsage, fmt.Errorf("%w\nRun '%s --help' for usage.", err, c.CommandPath()))
	})
	return root
}

// Main runs the command line and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, "fliswarm:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own errors (unknown command, bad args) are usage errors.
	return ExitUsage
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fliswarm's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintln(g.stdout, version.Version)
			return nil
		},
	}
}
