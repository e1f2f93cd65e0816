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

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/pkg/version"
)

// Reconciler is what the actor needs of the node reconciler: the spec, the
// set of managed nodes, their observed status, and converging on request.
// *controllers.Reconciler satisfies it.
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
	// SetCamera records whether the actor's client is connected to the
	// node's camera and, when not, why: the camera's readiness.
	SetCamera(node string, connected bool, reason string)
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

// Hub sends commands to other actors through the tron hub. *TronClient
// satisfies it.
type Hub interface {
	// Command sends command to the actor called target and waits for its
	// terminal reply, which it returns. A failed command is a nil error
	// with a reply whose Code is `f` or `!`.
	Command(ctx context.Context, target, command string) (HubReply, error)
}

// Defaults of the Options durations.
const (
	DefaultConvergeTimeout   = 3 * time.Minute
	DefaultDeviceWait        = 30 * time.Second
	DefaultPowerCycleDelay   = 3 * time.Second
	DefaultRebootStatusDelay = 5 * time.Second
	// DefaultExecTimeout bounds one ssh run of a soft reboot.
	DefaultExecTimeout = time.Minute
)

// Options configure an Actor. Only Reconciler is required.
type Options struct {
	// Reconciler converges the nodes and reports their status.
	Reconciler Reconciler
	// Logger receives the actor's logs. Default: discard.
	Logger logr.Logger
	// Version is told to users on connection and by `version`. Default
	// version.Version.
	Version string
	// Addr is the address the actor listens on (host:port; port 0 picks a
	// free one). Default spec.Actor.Host:spec.Actor.Port.
	Addr string
	// TronAddr is the tron hub's address. Default
	// spec.Actor.TronHost:spec.Actor.TronPort; no hub connection when that
	// host is empty.
	TronAddr string
	// Hub, when set, is used for commands to other actors instead of the
	// actor's own tron connection (which is then not opened).
	Hub Hub
	// Exec runs ssh for a soft reboot. Default os/exec.
	Exec ExecFunc
	// DeviceOptions is the template of every camera client's options
	// (dial timeout, backoff, line limit). Logger, OnState and
	// OnUnsolicited are set by the actor; commands are bounded by the
	// spec's command_timeout.
	DeviceOptions device.Options
	// Metrics is told of every command's outcome and of the camera lines
	// relayed. Default: nobody.
	Metrics Metrics
	// ServerOptions are passed to the opscore server after the actor's own
	// (logger, version): the users' backlog bound, stall time, and so on.
	ServerOptions []opscore.Option
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

// Actor is fliswarm's opscore actor and its camera clients.
type Actor struct {
	opts Options
	rec  Reconciler
	log  logr.Logger

	srv   atomic.Pointer[opscore.Server]
	peers *peerLog // the users' peer addresses, to recognise tron's
	wg    sync.WaitGroup

	syncMu sync.Mutex // serialises syncDevices and syncTron

	mu             sync.Mutex
	spec           *v1.Swarm
	runCtx         context.Context // set by Start
	devices        map[string]*deviceEntry
	runtimeEnabled map[string]bool // nodes enabled by name with `enable`
	tron           *TronClient
	tronAddr       string
	tronStop       context.CancelFunc
	tronDone       chan struct{}

	configErr    string        // the last rejected configuration edit, "" when none stands
	specChanged  chan struct{} // buffered(1): the status loop re-reads the interval
	busy         *busyTracker
	reconnectSem chan struct{} // one reconnect at a time
	sims         simulations
}

// deviceEntry is the client of one enabled node's camera.
type deviceEntry struct {
	name   string
	addr   string
	client *device.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the client's Run has returned
}

// CameraState returns whether the actor's client is connected to node's
// camera and, when it is not, why (the camera does not answer, the actor
// on its port is another, the node is not enabled, ...), for status.
func (a *Actor) CameraState(node string) (connected bool, reason string) {
	c := a.device(node)
	if c == nil {
		return false, "no camera client (node not enabled, or the actor not started)"
	}
	ok, err := c.State()
	if ok {
		return true, ""
	}
	if err == nil {
		return false, "not connected"
	}
	return false, err.Error()
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

// New returns an actor. It does nothing until Start.
func New(opts Options) *Actor {
	opts = opts.withDefaults()
	return &Actor{
		opts:           opts,
		rec:            opts.Reconciler,
		log:            opts.Logger,
		peers:          newPeerLog(opts.Logger.WithName("tron")),
		devices:        map[string]*deviceEntry{},
		runtimeEnabled: map[string]bool{},
		specChanged:    make(chan struct{}, 1),
		busy:           newBusyTracker(),
		reconnectSem:   make(chan struct{}, 1),
	}
}

// Start binds the actor's port and returns once it listens; it then serves
// users, keeps a client to every enabled node's camera, keeps the tron
// connection and broadcasts a status every spec.StatusInterval, all until
// ctx ends (see Wait). It fails when the port cannot be bound.
func (a *Actor) Start(ctx context.Context) error {
	if a.rec == nil {
		return errors.New("actor: no Reconciler given")
	}
	a.mu.Lock()
	if a.runCtx != nil {
		a.mu.Unlock()
		return errors.New("actor: already started")
	}
	if a.spec == nil {
		a.spec, _ = a.rec.Spec()
	}
	spec := a.spec
	a.mu.Unlock()
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

	a.mu.Lock()
	a.runCtx = ctx
	a.mu.Unlock()

	a.wg.Go(func() {
		if err := srv.Serve(ctx); err != nil {
			a.log.Error(err, "actor server stopped")
		}
	})
	a.syncDevices()
	a.syncTron()
	a.wg.Go(func() { a.statusLoop(ctx) })
	a.log.Info("actor started", "addr", srv.Addr().String())
	return nil
}

// Addr returns the address the actor listens on, or nil before Start.
func (a *Actor) Addr() net.Addr {
	if srv := a.srv.Load(); srv != nil {
		return srv.Addr()
	}
	return nil
}

// Wait blocks until everything Start started has ended (after its ctx
// ended).
func (a *Actor) Wait() { a.wg.Wait() }

// SetSpec makes spec the actor's view of the configuration, after a
// reload: camera clients are added, removed or re-addressed to match the
// enabled nodes, the tron connection follows a changed hub address, and
// the status broadcast its interval. Call it after the reconciler has the
// new spec. The listening address is not changed.
func (a *Actor) SetSpec(spec *v1.Swarm) {
	if spec == nil {
		return
	}
	a.mu.Lock()
	a.spec = spec
	a.mu.Unlock()
	select {
	case a.specChanged <- struct{}{}:
	default:
	}
	a.syncDevices()
	a.syncTron()
}

// ContainerStarted tells the actor that node's camera container was just
// (re)started: its camera client dials at once, and again every few tens
// of milliseconds until the camera listens, instead of waiting out its
// backoff (see device.Client.Started).
func (a *Actor) ContainerStarted(node string) {
	a.busy.forget(node) // a new camera is idle
	if c := a.device(node); c != nil {
		c.Started()
	}
}

// CameraAnswers tells the actor that node's camera, which fliswarm
// started, answers: its client dials at once if it is not connected yet.
func (a *Actor) CameraAnswers(node string) {
	if c := a.device(node); c != nil {
		c.Kick()
	}
}

// Broadcast sends an unsolicited reply (uid 0, cmdId 0) to every user. It
// does nothing before Start.
func (a *Actor) Broadcast(code opscore.Code, kws ...opscore.Keyword) {
	if srv := a.srv.Load(); srv != nil {
		srv.Broadcast(code, kws...)
	}
}

// currentSpec returns the actor's spec.
func (a *Actor) currentSpec() *v1.Swarm {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.spec == nil {
		a.spec, _ = a.rec.Spec()
	}
	return a.spec
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
func (a *Actor) device(node string) *device.Client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e := a.devices[node]; e != nil {
		return e.client
	}
	return nil
}

// commandTimeout bounds one camera command: the spec's command_timeout
// when positive, else 0 (no limit; see v1.Swarm.CommandTimeout).
func commandTimeout(spec *v1.Swarm) time.Duration {
	return max(spec.CommandTimeout.D(), 0)
}

// cameraAddr is the address of node's camera actor.
func cameraAddr(n v1.Node) string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// syncDevices makes the camera clients match the enabled nodes and their
// addresses. A client that goes is stopped (and its node recorded as
// disconnected) before its replacement starts.
func (a *Actor) syncDevices() {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()

	spec := a.currentSpec()
	want := map[string]string{}
	for _, n := range a.enabled(spec) {
		want[n] = cameraAddr(spec.Nodes[n])
	}

	a.mu.Lock()
	if a.runCtx == nil {
		a.mu.Unlock()
		return
	}
	var stop []*deviceEntry
	for name, e := range a.devices {
		if addr, ok := want[name]; !ok || addr != e.addr {
			stop = append(stop, e)
			delete(a.devices, name)
		}
	}
	a.mu.Unlock()

	for _, e := range stop {
		e.cancel()
		<-e.done
		a.rec.SetCamera(e.name, false, "camera client stopped")
		a.log.Info("camera client stopped", "node", e.name, "addr", e.addr)
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCtx.Err() != nil {
		return
	}
	for name, addr := range want {
		if a.devices[name] == nil {
			a.devices[name] = a.startDeviceLocked(name, addr)
		}
	}
}

// startDeviceLocked starts a camera client; a.mu is held.
func (a *Actor) startDeviceLocked(name, addr string) *deviceEntry {
	ctx, cancel := context.WithCancel(a.runCtx)
	e := &deviceEntry{name: name, addr: addr, cancel: cancel, done: make(chan struct{})}

	o := a.opts.DeviceOptions
	o.Logger = a.log.WithName("device")
	o.InlineReplies = true // talk's relay only queues lines (see talk)
	type state struct {
		connected bool
		reason    string
	}
	var last *state // OnState calls come one at a time from Run
	o.OnState = func(connected bool, err error) {
		now := state{connected: connected}
		if err != nil && !connected {
			now.reason = err.Error()
		}
		if last != nil && *last == now {
			return
		}
		last = &now
		if now.reason != "" {
			a.log.V(1).Info("camera not connected", "node", name, "reason", now.reason)
		}
		a.rec.SetCamera(name, connected, now.reason)
	}
	o.OnUnsolicited = func(r clu.Reply) {
		a.busy.observe(name, r)
		lines := relayLines(r)
		a.opts.Metrics.LinesRelayed(len(lines))
		for _, l := range lines {
			a.Broadcast(l.Code, l.Keywords...)
		}
	}
	e.client = device.New(name, addr, o)
	a.wg.Go(func() {
		defer close(e.done)
		if err := e.client.Run(ctx); err != nil {
			a.log.Error(err, "camera client stopped", "node", name)
		}
	})
	a.log.Info("camera client started", "node", name, "addr", addr)
	return e
}

// tronAddress is the hub address to connect to, "" for none.
func (a *Actor) tronAddress(spec *v1.Swarm) string {
	if a.opts.Hub != nil {
		return ""
	}
	if a.opts.TronAddr != "" {
		return a.opts.TronAddr
	}
	if spec.Actor.TronHost == "" || spec.Actor.TronPort <= 0 {
		return ""
	}
	return net.JoinHostPort(spec.Actor.TronHost, strconv.Itoa(spec.Actor.TronPort))
}

// syncTron keeps one tron client connected to the spec's hub address.
func (a *Actor) syncTron() {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	spec := a.currentSpec()
	addr := a.tronAddress(spec)

	a.mu.Lock()
	if a.runCtx == nil || addr == a.tronAddr {
		a.mu.Unlock()
		return
	}
	stop, done := a.tronStop, a.tronDone
	a.tron, a.tronAddr, a.tronStop, a.tronDone = nil, "", nil, nil
	a.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	if addr == "" {
		return
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.runCtx.Err() != nil {
		return
	}
	name := spec.Actor.Name
	if name == "" {
		name = v1.DefaultActorName
	}
	t := NewTronClient(addr, name+"."+name, a.log.WithName("tron"))
	t.StartNubs(name) // as CLU: ask tron to connect back, on every connection
	if host, _, err := net.SplitHostPort(addr); err == nil {
		rctx := a.runCtx
		a.wg.Go(func() { a.peers.resolve(rctx, host) }) // so that tron's connection is logged
	}
	ctx, cancel := context.WithCancel(a.runCtx)
	done = make(chan struct{})
	a.tron, a.tronAddr, a.tronStop, a.tronDone = t, addr, cancel, done
	a.wg.Go(func() {
		defer close(done)
		_ = t.Run(ctx)
	})
}

// hub returns what commands other actors, or nil when nothing does.
func (a *Actor) hub() Hub {
	if a.opts.Hub != nil {
		return a.opts.Hub
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tron == nil {
		return nil
	}
	return a.tron
}

// statusLoop runs `status` as a broadcast once at start and then every
// spec.StatusInterval (neither when it is negative), as the original's timed command does (CLU runs a
// timed command at once): its `>`, its lines and its `:` all go to every
// user with uid 0 and cmdId 0.
func (a *Actor) statusLoop(ctx context.Context) {
	if a.currentSpec().StatusInterval.D() >= 0 { // negative: no status broadcast at all
		a.broadcastStatus(ctx)
	}
	for {
		d := a.currentSpec().StatusInterval.D()
		if d == 0 {
			d = v1.DefaultStatusInterval.D()
		}
		var tick <-chan time.Time
		var t *time.Timer
		if d > 0 {
			t = time.NewTimer(d)
			tick = t.C
		}
		select {
		case <-ctx.Done():
		case <-a.specChanged:
		case <-tick:
			a.broadcastStatus(ctx)
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// broadcastStatus runs `status` with its replies broadcast.
func (a *Actor) broadcastStatus(ctx context.Context) {
	if srv := a.srv.Load(); srv != nil {
		if err := srv.RunBroadcast(ctx, "status"); err != nil && ctx.Err() == nil {
			a.log.Error(err, "periodic status failed")
		}
	}
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
