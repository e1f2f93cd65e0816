package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/logging"
	"github.com/sdss/fliswarm/pkg/manager"
)

type startFlags struct {
	debug      bool
	foreground bool
	logFile    string
	relayOnly  bool
}

func newStartCmd(g *globals) *cobra.Command {
	f := &startFlags{}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the fliswarm daemon (detached unless --debug or --foreground)",
		Long: `Start the daemon: it converges every enabled node and serves the actor.
By default it detaches and "start" returns once the daemon is ready.
--debug stays in the foreground with readable logs on the terminal;
--foreground stays in the foreground with JSON logs (for a service manager).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return start(cmd, g, f) },
	}
	cmd.Flags().BoolVar(&f.debug, "debug", false, "stay in the foreground and log readable lines to the terminal")
	cmd.Flags().BoolVar(&f.foreground, "foreground", false, "stay in the foreground, logging JSON (to --log or stderr)")
	cmd.Flags().StringVar(&f.logFile, "log", "", "log file (default: fliswarm.log in the configuration's actor.log_dir)")
	cmd.Flags().BoolVar(&f.relayOnly, "relay-only", false,
		"only relay: serve the actor and relay to the cameras, never touch an engine (another system, such as Kubernetes, runs the cameras)")
	return cmd
}

func start(cmd *cobra.Command, g *globals, f *startFlags) error {
	if pid := daemon.Running(g.pidPath()); pid != 0 && !daemon.IsChild() {
		return withCode(ExitFailure, &daemon.ErrRunning{Pid: pid, Path: g.pidPath()})
	}
	// Check the configuration here, so its problems reach the terminal.
	l, err := g.load()
	if err != nil {
		if daemon.IsChild() {
			daemon.Failed(err)
		}
		return err
	}
	if !f.debug && !f.foreground && !daemon.IsChild() {
		if err := os.MkdirAll(g.runDir, 0o755); err != nil {
			return withCode(ExitFailure, err)
		}
		pid, err := daemon.Detach(g.childArgs(f), filepath.Join(g.runDir, "fliswarm.out"), 60*time.Second)
		if err != nil {
			return withCode(ExitFailure, fmt.Errorf("starting daemon: %w", err))
		}
		fmt.Fprintf(g.stdout, "fliswarm started (pid %d, pid file %s)\n", pid, g.pidPath())
		return nil
	}

	logFile := f.logFile
	if logFile == "" {
		logFile = logging.FileIn(l.Spec.Actor.LogDir)
	}
	log, flush, err := logging.New(logging.Options{
		Console: f.debug, Verbose: f.debug, File: logFile, JSON: !f.debug && logFile == "",
	})
	if err != nil {
		// A log directory we cannot write must not keep the cameras
		// unmanaged: fall back to stderr and say so.
		fmt.Fprintf(g.stderr, "warning: %v; logging to stderr\n", err)
		log, flush, _ = logging.New(logging.Options{Console: f.debug, Verbose: f.debug, JSON: !f.debug})
	}
	defer flush()

	pidFile, err := daemon.Acquire(g.pidPath())
	if err != nil {
		daemon.Failed(err)
		return withCode(ExitFailure, err)
	}
	defer pidFile.Release()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	for _, w := range l.Warnings {
		log.Info("configuration warning", "warning", w)
	}
	ready := false
	m, err := manager.New(manager.Options{
		Config:     l,
		ConfigPath: g.configPath,
		Nodes:      g.nodes,
		RunDir:     g.runDir,
		RelayOnly:  f.relayOnly,
		Logger:     log,
		Ready: func() {
			ready = true
			daemon.Ready()
			log.Info("fliswarm started", "pid", os.Getpid(), "config", l.Source, "revision", l.Revision)
		},
	})
	if err != nil {
		daemon.Failed(err)
		return withCode(ExitFailure, err)
	}
	err = m.Start(ctx) // until SIGTERM or SIGINT, or a part fails
	if !ready {
		daemon.Failed(err)
		return withCode(ExitFailure, err)
	}
	log.Info("fliswarm stopped; camera containers are left running")
	if err != nil && !errors.Is(err, context.Canceled) {
		return withCode(ExitFailure, err)
	}
	return nil
}

func newStopCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon and wait until it is gone (camera containers keep running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, err := daemon.Stop(g.pidPath(), timeout)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			if pid == 0 {
				fmt.Fprintf(g.stdout, "fliswarm is not running (no daemon holds %s)\n", g.pidPath())
				return nil
			}
			fmt.Fprintf(g.stdout, "fliswarm stopped (pid %d)\n", pid)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "how long to wait for the daemon to exit")
	return cmd
}

func newRestartCmd(g *globals) *cobra.Command {
	f := &startFlags{}
	cmd := &cobra.Command{
		Use:   "restart",
		Short: "Stop the daemon if it runs, then start it detached",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.load(); err != nil {
				return err // never stop a working daemon for a broken config
			}
			if pid, err := daemon.Stop(g.pidPath(), 30*time.Second); err != nil {
				return withCode(ExitFailure, err)
			} else if pid != 0 {
				fmt.Fprintf(g.stdout, "fliswarm stopped (pid %d)\n", pid)
			}
			return start(cmd, g, f)
		},
	}
	cmd.Flags().StringVar(&f.logFile, "log", "", "log file (default: fliswarm.log in the configuration's actor.log_dir)")
	return cmd
}

// childArgs are the arguments of the detached daemon: the same
// configuration and overrides, in the foreground.
func (g *globals) childArgs(f *startFlags) []string {
	args := []string{"start", "--foreground", "--run-dir", g.runDir}
	if g.configPath != "" {
		p, err := filepath.Abs(g.configPath)
		if err != nil {
			p = g.configPath
		}
		args = append(args, "--config", p)
	}
	if g.nodes != nil {
		args = append(args, "--nodes", strings.Join(g.nodes, ","))
	}
	if f.relayOnly {
		args = append(args, "--relay-only")
	}
	if f.logFile != "" {
		p, err := filepath.Abs(f.logFile)
		if err != nil {
			p = f.logFile
		}
		args = append(args, "--log", p)
	}
	return args
}
