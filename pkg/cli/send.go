package cli

import (
	"context"
	"fmt"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sdss/fliswarm/pkg/opscore"
)

func newSendCmd(g *globals) *cobra.Command {
	var addr string
	var timeout time.Duration
	var quiet bool
	cmd := &cobra.Command{
		Use:   "send COMMAND...",
		Short: "Send one command to the running actor and print its replies",
		Long: `Send one command to fliswarm's actor port (actor.host:actor.port of the
configuration, or --addr), print every reply line as it arrives, and exit 0
when the command finishes (:) or 1 when it fails (f or !).

  fliswarm send 'talk -n gfa1 status'
  fliswarm send talk expose 1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				l, err := g.load()
				if err != nil {
					return err
				}
				addr = net.JoinHostPort(l.Spec.Actor.Host, strconv.Itoa(l.Spec.Actor.Port))
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			c, err := opscore.Dial(ctx, addr)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("connecting to the actor at %s: %w", addr, err))
			}
			defer c.Close()
			body := strings.Join(args, " ")
			final, err := c.Send(ctx, body, func(r opscore.Reply) {
				if !quiet {
					fmt.Fprintln(g.stdout, r.String())
				}
			})
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("%s: %w", body, err))
			}
			if quiet {
				fmt.Fprintln(g.stdout, final.String())
			}
			if final.Code != opscore.Done {
				return withCode(ExitFailure, fmt.Errorf("command %q failed", body))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "actor address host:port (default: from the configuration)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the final reply")
	return cmd
}
