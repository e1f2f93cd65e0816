package actor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/pkg/version"
)

// Reconciler is what the actor needs of the node controller: the spec,
// the set of managed nodes, their observed status, and converging on
// request. *controllers.NodeController satisfies it.
type Reconciler interface {
	// Spec returns the spec in force and its revision.
	Spec() (*v1.Swarm, string)
	// Enabled returns the nodes managed now (the spec's enabled nodes with
	// the runtime enable/disable overrides applied), in order.
	Enabled() []string
	// SetEnabled enables or disables a configured node at run time; it
	// returns false when the node is not configured.
	SetEnabled(node string, on bool) bool
	// Status returns the last observed status of every node.
	Status() []v1.NodeStatus
	// Converge reconciles the nodes now (opts.Redeploy: pull the image and
	// replace the container; opts.Force: and recreate the volumes),
	// reporting each step to opts.Progress, and waits until each converged
	// or ctx ends; it maps each node to nil or the last error seen.
	Converge(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error
}

// Metrics counts what the actor does.
type Metrics interface {
	// CommandDone counts a command by verb and outcome (done, failed).
	CommandDone(verb, outcome string)
	// LinesRelayed counts camera lines relayed to users.
	LinesRelayed(n int)
}

type noMetrics struct{}

func (noMetrics) CommandDone(string, string) {}
func (noMetrics) LinesRelayed(int)           {}

// ExecFunc runs a program with arguments (no shell) and returns its
// combined output and exit code. err is non-nil only when the program could
// not be run at all (not found, ctx ended before it started); a program
// that ran and failed is a nil error with a non-zero exit code.
type ExecFunc func(ctx context.Context, name string, args ...string) (output []byte, exitCode int, err error)

// Hub sends commands to other actors through the tron hub. *HubLink and
// *TronClient satisfy it.
type Hub interface {
	// Command sends command to the actor called target and waits for its
	// terminal reply, which it returns. A failed command is a nil error
	// with a reply whose Code is `f` or `!`.
	Command(ctx context.Context, target, command string) (HubReply, error)
}

// hubStater is a Hub that knows its connection's state (*HubLink,
// *TronClient), for status.
type hubStater interface{ State() HubState }

// Defaults of the Options durations.
const (
	DefaultConvergeTimeout   = 3 * time.Minute
	DefaultDeviceWait        = 30 * time.Second
	DefaultPowerCycleDelay   = 3 * time.Second
	DefaultRebootStatusDelay = 5 * time.Second
	// DefaultExecTimeout bounds one ssh run of a soft reboot.
	DefaultExecTimeout = time.Minute
)

// Options configure an Actor. Reconciler and Cameras are required.
type Options struct {
	// Reconciler converges the nodes and reports their status; it owns
	// the spec.
	Reconciler Reconciler
	// Cameras are the camera clients commands are relayed to; their
	// unsolicited replies are broadcast to every user.
	Cameras *Cameras
	// Hub commands other actors (a hard reboot's power commands); a
	// *HubLink in the daemon. nil: no hub.
	Hub Hub
	// Subscribe tells the actor that the spec may have changed (the
	// status broadcast's interval, the hub's host); nil: the interval in
	// force is read again at each broadcast.
	Subscribe func() (<-chan string, func())
	// Logger receives the actor's logs. Default: discard.
	Logger logr.Logger
	// Version is told to users on connection and by `version`. Default
	// version.Version.
	Version string
	// Addr is the address the actor listens on (host:port; port 0 picks a
	// free one). Default spec.Actor.Host:spec.Actor.Port.
	Addr string
	// Exec runs ssh for a soft reboot. Default os/exec.
	Exec ExecFunc
	// Metrics is told of every command's outcome and of the camera lines
	// relayed. Default: nobody.
	Metrics Metrics
	// ServerOptions are passed to the opscore server after the actor's own
	// (logger, version): the users' backlog bound, stall time, and so on.
	ServerOptions []opscore.Option
	// Logs reads the cameras' output for `logs`; nil: the command fails.
	Logs Logs
	// ConvergeTimeout bounds a reconnect's wait for the reconciler.
	// Default 3 minutes.
	ConvergeTimeout time.Duration
	// DeviceWait bounds a reconnect's wait for each camera to answer after
	// its node converged. Default 30 s.
	DeviceWait time.Duration
	// PowerCycleDelay is the pause between powering nodes off and on in a
	// hard reboot. Default (0) 3 s, as the original; negative: no pause.
	PowerCycleDelay time.Duration
	// RebootStatusDelay is the pause after a reboot before its status
	// report. Default (0) 5 s, as the original; negative: no pause.
	RebootStatusDelay time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Version == "" {
		o.Version = version.Version
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.Exec == nil {
		o.Exec = runProgram
	}
	if o.ConvergeTimeout <= 0 {
		o.ConvergeTimeout = DefaultConvergeTimeout
	}
	if o.DeviceWait <= 0 {
		o.DeviceWait = DefaultDeviceWait
	}
	if o.PowerCycleDelay == 0 {
		o.PowerCycleDelay = DefaultPowerCycleDelay
	}
	if o.RebootStatusDelay == 0 {
		o.RebootStatusDelay = DefaultRebootStatusDelay
	}
	return o
}

// Actor is fliswarm's opscore actor: it serves users and runs their
// commands, relaying camera commands through Cameras and asking the
// Reconciler to converge, enable or disable nodes.
type Actor struct {
	opts Options
	rec  Reconciler
	cams *Cameras
	log  logr.Logger

	srv     atomic.Pointer[opscore.Server] // set by Bind
	peers   *peerLog                       // the users' peer addresses, to recognise tron's
	started atomic.Bool

	mu             sync.Mutex
	runtimeEnabled map[string]bool // nodes enabled by name with `enable`
	configErr      string          // the last rejected configuration edit, "" when none stands

	reconnectSem chan struct{} // one reconnect at a time
	sims         simulations
}

// SetConfigError tells the actor that a configuration edit was rejected
// (msg says why) or, with msg "", that the configuration in force is valid
// again. A new rejection is broadcast to every user as a warning
// (`error=<actor>,"configuration edit rejected: <msg>"`), and `status`
// reports it while it stands.
func (a *Actor) SetConfigError(msg string) {
	a.mu.Lock()
	prev := a.configErr
	a.configErr = msg
	a.mu.Unlock()
	if msg != "" && msg != prev {
		a.Broadcast(opscore.Warning, a.configErrorKeyword(msg))
	}
}

func (a *Actor) configErrorKeyword(msg string) opscore.Keyword {
	return opscore.KW("error", a.actorName(), "configuration edit rejected: "+msg)
}

// configError returns the rejection standing, "" for none.
func (a *Actor) configError() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.configErr
}

// New returns an actor, which receives the cameras' unsolicited replies
// from now on (to broadcast them once it serves). It does nothing until
// Bind and Start.
func New(opts Options) *Actor {
	opts = opts.withDefaults()
	a := &Actor{
		opts:           opts,
		rec:            opts.Reconciler,
		cams:           opts.Cameras,
		log:            opts.Logger,
		peers:          newPeerLog(opts.Logger.WithName("tron")),
		runtimeEnabled: map[string]bool{},
		reconnectSem:   make(chan struct{}, 1),
	}
	if a.cams != nil {
		a.cams.relayTo(a.relayUnsolicited)
	}
	return a
}

// relayUnsolicited broadcasts a camera's unsolicited reply to every user.
func (a *Actor) relayUnsolicited(node string, r clu.Reply) {
	lines := relayLines(r)
	a.opts.Metrics.LinesRelayed(len(lines))
	for _, l := range lines {
		a.Broadcast(l.Code, l.Keywords...)
	}
}

// Bind binds the actor's port, so that a port in use fails the daemon's
// start at once. Start binds it when Bind was not called.
func (a *Actor) Bind() error {
	if a.rec == nil || a.cams == nil {
		return errors.New("actor: Reconciler and Cameras are required")
	}
	if a.srv.Load() != nil {
		return nil
	}
	spec, _ := a.rec.Spec()
	if spec == nil {
		return errors.New("actor: the reconciler has no spec")
	}
	addr := a.opts.Addr
	if addr == "" {
		addr = net.JoinHostPort(spec.Actor.Host, strconv.Itoa(spec.Actor.Port))
	}
	srvOpts := append([]opscore.Option{
		opscore.WithLogger(a.log.WithName("opscore")),
		opscore.WithVersion(a.opts.Version),
		opscore.WithUserHook(a.peers.userHook),
	}, a.opts.ServerOptions...)
	srv := opscore.NewServer(addr, a, srvOpts...)
	if err := srv.Listen(); err != nil {
		return fmt.Errorf("actor: cannot serve the actor port: %w", err)
	}
	a.srv.Store(srv)
	return nil
}

// Start serves users and broadcasts a status every spec.StatusInterval
// until ctx ends, then returns nil once every command's goroutine has
// ended; it fails when the port cannot be bound or serving fails.
func (a *Actor) Start(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return errors.New("actor: already started")
	}
	if err := a.Bind(); err != nil {
		return err
	}
	srv := a.srv.Load()
	a.log.Info("actor started", "addr", srv.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { a.follow(gctx); return nil })
	return g.Wait()
}

// Addr returns the address the actor listens on, or nil before Bind.
func (a *Actor) Addr() net.Addr {
	if srv := a.srv.Load(); srv != nil {
		return srv.Addr()
	}
	return nil
}

// Broadcast sends an unsolicited reply (uid 0, cmdId 0) to every user. It
// does nothing before Bind.
func (a *Actor) Broadcast(code opscore.Code, kws ...opscore.Keyword) {
	if srv := a.srv.Load(); srv != nil {
		srv.Broadcast(code, kws...)
	}
}

// currentSpec returns the spec in force (the reconciler's).
func (a *Actor) currentSpec() *v1.Swarm {
	spec, _ := a.rec.Spec()
	return spec
}

// enabled returns the managed nodes that the spec knows, in order.
func (a *Actor) enabled(spec *v1.Swarm) []string {
	var out []string
	for _, n := range a.rec.Enabled() {
		if _, ok := spec.Nodes[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

// device returns node's camera client, or nil.
func (a *Actor) device(node string) *device.Client { return a.cams.client(node) }

// commandTimeout bounds one camera command: the spec's command_timeout
// when positive, else 0 (no limit; see v1.Swarm.CommandTimeout).
func commandTimeout(spec *v1.Swarm) time.Duration {
	return max(spec.CommandTimeout.D(), 0)
}

// cameraAddr is the address of node's camera actor.
func cameraAddr(n v1.Node) string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// hub returns what commands other actors, or nil when nothing does (no
// Hub, or a hub link with no hub configured).
func (a *Actor) hub() Hub {
	if s, ok := a.opts.Hub.(hubStater); ok && s.State().Addr == "" {
		return nil
	}
	return a.opts.Hub
}

// runProgram is the default ExecFunc.
func runProgram(ctx context.Context, name string, args ...string) ([]byte, int, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0, nil
	case errors.As(err, &ee):
		return out, ee.ExitCode(), nil
	default:
		return out, -1, err
	}
}
