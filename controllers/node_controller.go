package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// Options configure a NodeController. Zero values take the defaults noted.
type Options struct {
	Logger logr.Logger
	// NewEngine opens a node's engine; default engine.New with the
	// connection's TLS or ssh settings and the spec's registry
	// credentials.
	NewEngine func(node string, conn v1.EngineConnection) (Engine, error)
	// Ping checks that a host answers; default ping.Host.
	Ping func(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error
	// DialCamera checks that a camera's port accepts a connection, the
	// readiness of a camera in a one-shot reconcile, which has no camera
	// clients (see once.go); default a TCP dial.
	DialCamera func(ctx context.Context, address string) error
	// Busy tells whether the node's camera is busy (exposing) and why; a
	// change that would recreate it waits, up to update_wait.
	Busy func(node string) (bool, string)
	// OnContainerStarted is called as soon as fliswarm has started a
	// node's camera container (the camera client then dials the camera
	// until it listens; its state, reported through SetCamera, is the
	// camera's readiness).
	OnContainerStarted func(node string)
	// CrashBackoff is the crash-loop schedule; default DefaultCrashBackoff.
	CrashBackoff CrashBackoff
	// RateLimiter spaces the retries of failed reconciles; default
	// DefaultRateLimiter.
	RateLimiter RateLimiter
	// Clock; default the wall clock.
	Clock Clock
	// Metrics records reconciles and actions; nil records nothing.
	Metrics Metrics
	// Store is the status store to keep, made first by a caller whose
	// other parts read it (NewStore with the same spec and revision);
	// default a new one.
	Store *Store
	// Events records what happens to each node (fliswarm events); nil
	// records nothing.
	Events EventRecorder
}

// Metrics is what the controller reports to a metrics registry.
type Metrics interface {
	// ObserveReconcile records one reconcile of node: how long it took
	// and whether it failed (and is retried with backoff).
	ObserveReconcile(node string, d time.Duration, err error)
	// CountAction records one action run: its kind (pull-image,
	// start-container, ...) and its outcome, "ok" or "error".
	CountAction(kind, outcome string)
}

func (o Options) withDefaults() Options {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Ping == nil {
		o.Ping = defaultPing
	}
	if o.DialCamera == nil {
		o.DialCamera = dialCamera
	}
	if o.CrashBackoff == (CrashBackoff{}) {
		o.CrashBackoff = DefaultCrashBackoff
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	return o
}

// NodeController keeps every enabled node converged: a queue and its
// workers, the sources that fill it, the node reconciler, the status
// store and the rollout coordinator, wired together.
type NodeController struct {
	opts     Options
	log      logr.Logger
	store    *Store
	queue    *Queue
	engines  *Engines
	rollout  *Rollout
	requests *Requests
	events   *EventSource
	rec      *NodeReconciler

	// specMu orders the changes of the spec in force: a configuration
	// change (SetSpec) and a new image digest (watchImage).
	specMu     sync.Mutex
	configSpec *v1.Swarm // as configured, without the digest pin
	configRev  string
	pin        pin
	// imageKick has watchImage ask the registry at once.
	imageKick chan struct{}
}

// New returns a controller for spec. Nothing runs until Run.
func New(spec *v1.Swarm, revision string, opts Options) *NodeController {
	opts = opts.withDefaults()
	store := opts.Store
	if store == nil {
		store = NewStore(spec, revision)
	}
	if opts.Events != nil {
		store.RecordEventsTo(opts.Events)
	}
	c := &NodeController{opts: opts, log: opts.Logger, store: store,
		configSpec: spec, configRev: revision, imageKick: make(chan struct{}, 1)}
	c.queue = NewQueue(opts.RateLimiter, opts.Clock)
	if opts.NewEngine == nil {
		log := opts.Logger.WithName("engine")
		auth := func() (string, error) { spec, _ := c.store.Spec(); return engine.RegistryAuthFor(spec) }
		opts.NewEngine = func(node string, conn v1.EngineConnection) (Engine, error) {
			// Fast keepalives: a node that vanishes ends its event
			// stream soon, and is then pinged (observecache.go).
			return engine.New(node, conn.Address, engine.OptionsFor(conn, engine.Options{Logger: log, RegistryAuth: auth, KeepAlive: engine.FastKeepAlive}))
		}
	}
	c.engines = NewEngines(opts.NewEngine)
	c.rollout = NewRollout(spec.MaxUnavailable, c.queue.Add)
	c.rollout.WaitForHistory(c.store.Enabled)
	c.requests = NewRequests(c.queue.Add)
	expect := NewExpectations(opts.Clock)
	c.events = NewEventSource(c.engines, c.store, expect, c.queue.Add, opts.Logger.WithName("events"))
	c.rec = newNodeReconciler(c.store, c.engines, c.rollout, c.requests, expect, opts)
	c.rec.feeds = c.events.Feeds()
	c.rollout.SetRevision(revision)
	return c
}

// Store is the controller's status store.
func (c *NodeController) Store() *Store { return c.store }

// Spec returns the spec in force and its revision.
func (c *NodeController) Spec() (*v1.Swarm, string) { return c.store.Spec() }

// SetSpec replaces the desired state (a configuration change, a source)
// and enqueues every node it touches. The image digest pinned by image
// updates is kept while the image is the same.
func (c *NodeController) SetSpec(spec *v1.Swarm, revision string) {
	c.specMu.Lock()
	defer c.specMu.Unlock()
	old := c.configSpec
	c.configSpec, c.configRev = spec, revision
	if spec.ImageUpdateInterval > 0 && (old.ImageRef() != spec.ImageRef() || old.ImageUpdateInterval != spec.ImageUpdateInterval) {
		select {
		case c.imageKick <- struct{}{}:
		default:
		}
	}
	eff, rev := pinned(spec, revision, c.pin)
	c.applyLocked(eff, rev)
}

// applyLocked puts spec in force; specMu held.
func (c *NodeController) applyLocked(spec *v1.Swarm, revision string) {
	before, after := c.store.SetSpec(spec, revision)
	c.rollout.SetMax(spec.MaxUnavailable)
	c.rollout.SetRevision(revision)
	c.events.Sync()
	for _, n := range union(before, after) {
		c.queue.Add(n)
	}
}

// Enabled returns the nodes managed now.
func (c *NodeController) Enabled() []string { return c.store.Enabled() }

// SetEnabled enables or disables a configured node at run time (the
// actor's enable and disable); false when the node is not configured.
func (c *NodeController) SetEnabled(node string, on bool) bool {
	if !c.store.SetEnabled(node, on) {
		return false
	}
	c.events.Sync()
	c.queue.Add(node)
	return true
}

// Status returns every node's status.
func (c *NodeController) Status() []v1.NodeStatus { return c.store.Status() }

// NodeStatus returns one node's status.
func (c *NodeController) NodeStatus(node string) (v1.NodeStatus, bool) {
	return c.store.NodeStatus(node)
}

// CheckNodes says why nodes cannot be reconciled: a name that is not
// configured, or a node that is not enabled.
func (c *NodeController) CheckNodes(nodes []string) error {
	spec, _ := c.store.Spec()
	var problems []string
	for _, n := range nodes {
		switch {
		case spec.Nodes[n].DockerClient == "" && spec.Nodes[n].Host == "":
			problems = append(problems, fmt.Sprintf("%s is not configured (configured: %s)", n, strings.Join(spec.NodeNames(), ", ")))
		case !c.store.IsEnabled(n):
			problems = append(problems, n+" is not enabled")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Run reconciles until ctx ends: the workers, the engine event watches
// and the resync run as one group, and Run returns once every goroutine
// has stopped.
func (c *NodeController) Run(ctx context.Context) error {
	spec, _ := c.store.Spec()
	workers := &Controller{Queue: c.queue, Reconciler: c.rec, Workers: max(4, len(spec.Nodes)), Log: c.log, Metrics: c.opts.Metrics}
	// Every node's first reconcile is queued before anything runs, so that
	// once the event streams are up it is known to be on its way.
	for _, n := range c.store.Enabled() {
		c.queue.Add(n)
	}
	var wg sync.WaitGroup
	wg.Go(func() { workers.Run(ctx) })
	c.events.Start(ctx)
	wg.Go(func() { Resync(ctx, c.store, c.opts.Clock, c.queue.Add, c.events.Feeds().Up) })
	wg.Go(func() { c.watchImage(ctx) })
	wg.Wait()
	c.events.Wait()
	c.engines.Close()
	return nil
}

// ConvergeResults asks for a reconcile of each node now (the crash-loop
// backoff and the wait for an idle camera skipped once; opts.Redeploy:
// the image pulled and the container replaced; opts.Force: and the
// volumes recreated) and waits until each converged, failed for good
// (unreachable, engine down, crash loop, halted rollout, not enabled) or
// ctx ended. Run must be running.
func (c *NodeController) ConvergeResults(ctx context.Context, nodes []string, opts v1.ConvergeOptions) []v1.NodeResult {
	return c.requests.Converge(ctx, nodes, opts, func(n string) v1.NodeStatus {
		st, _ := c.store.NodeStatus(n)
		return st
	})
}

// Converge is ConvergeResults as a map of each node to nil or its error
// (the actor's reconnect).
func (c *NodeController) Converge(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error {
	out := map[string]error{}
	for _, res := range c.ConvergeResults(ctx, nodes, opts) {
		out[res.Node] = nil
		if res.Error != "" {
			out[res.Node] = errors.New(res.Error)
		}
	}
	return out
}

// ReconcileOnce runs the controller until every node asked for is done
// (fliswarm reconcile without a daemon): the same machinery and the same
// answers as through the daemon.
func (c *NodeController) ReconcileOnce(ctx context.Context, nodes []string, opts v1.ConvergeOptions) []v1.NodeResult {
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Run(runCtx) })
	wg.Go(func() { c.watchPorts(runCtx, nodes) })
	res := c.ConvergeResults(ctx, nodes, opts)
	cancel()
	wg.Wait()
	return res
}

// SetCamera records whether node's camera client is connected to the
// camera and, when not, why (for status). It is the one source of a
// camera's readiness: a camera fliswarm started is ready when it is
// connected.
//
// A connection lost has the node's next pass ping it (the node may be
// gone although its event stream has not noticed yet), and has one
// within lostCameraLook if nothing else (a die event) made one.
func (c *NodeController) SetCamera(node string, connected bool, reason string) {
	lost := !connected && c.store.CameraConnected(node)
	c.store.SetCamera(node, connected, reason)
	if lost {
		feeds := c.events.Feeds()
		feeds.Silent(node)
		c.opts.Clock.AfterFunc(lostCameraLook, func() {
			if feeds.isSilent(node) {
				c.queue.Add(node)
			}
		})
	}
}

// lostCameraLook is how soon a node whose camera connection was lost is
// looked at when nothing else had it looked at.
const lostCameraLook = time.Second
