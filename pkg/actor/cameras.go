package actor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/device"
)

// Nodes is where the actor's parts read the spec in force and the managed
// nodes, and learn that either changed. *controllers.Store satisfies it.
type Nodes interface {
	// Spec returns the spec in force and its revision.
	Spec() (*v1.Swarm, string)
	// Enabled returns the nodes managed now, in order.
	Enabled() []string
	// Subscribe returns a channel told of every change (a node's name, or
	// "" for all) and a function that ends the subscription.
	Subscribe() (<-chan string, func())
}

// CameraStore is Nodes that also records each camera's connection.
// *controllers.Store satisfies it.
type CameraStore interface {
	Nodes
	// SetCamera records whether the client is connected to node's camera
	// and, when not, why ("" for no particular reason).
	SetCamera(node string, connected bool, reason string)
}

// CamerasOptions configure Cameras. Only Store is required.
type CamerasOptions struct {
	// Store is followed for the managed nodes and told of each camera's
	// connection.
	Store CameraStore
	// Logger receives the clients' logs. Default: discard.
	Logger logr.Logger
	// DeviceOptions is the template of every client's options (dial
	// timeout, backoff, line limit); Logger, OnState, OnUnsolicited and
	// InlineReplies are set by Cameras.
	DeviceOptions device.Options
}

// Cameras keeps one camera client per managed node: Start follows the
// store, starting a client for every enabled node, stopping the client of
// a node that is no longer enabled and re-addressing one whose camera
// moved, and records each client's connection in the store. It also
// knows whether a camera is exposing (Busy), and hands the cameras'
// unsolicited replies to the actor that attached itself.
type Cameras struct {
	opts  CamerasOptions
	log   logr.Logger
	busy  *busyTracker
	relay atomic.Pointer[func(node string, r clu.Reply)]

	mu      sync.Mutex
	clients map[string]*cameraClient
}

// cameraClient is the client of one managed node's camera.
type cameraClient struct {
	name   string
	addr   string
	client *device.Client
	cancel context.CancelFunc
	done   chan struct{} // closed when the client's Run has returned
}

// NewCameras returns the camera clients' pool; nothing runs until Start.
func NewCameras(opts CamerasOptions) *Cameras {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Cameras{opts: opts, log: opts.Logger, busy: newBusyTracker(), clients: map[string]*cameraClient{}}
}

// relayTo makes f receive every camera's unsolicited replies (the actor
// broadcasts them). The actor calls it once, when it is made.
func (c *Cameras) relayTo(f func(node string, r clu.Reply)) { c.relay.Store(&f) }

// Start runs the clients until ctx ends, following the store's managed
// nodes; it returns nil once every client has stopped.
func (c *Cameras) Start(ctx context.Context) error {
	if c.opts.Store == nil {
		return errors.New("cameras: no Store given")
	}
	changes, unsubscribe := c.opts.Store.Subscribe()
	defer unsubscribe()
	defer c.stopAll()
	for {
		c.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		}
	}
}

// wanted maps every managed node the spec knows to its camera's address.
func wanted(spec *v1.Swarm, enabled []string) map[string]string {
	want := map[string]string{}
	for _, n := range enabled {
		if node, ok := spec.Nodes[n]; ok {
			want[n] = cameraAddr(node)
		}
	}
	return want
}

// sync makes the clients match the managed nodes and their addresses. A
// client that goes is stopped (and its node recorded as disconnected)
// before its replacement starts. Only Start calls it.
func (c *Cameras) sync(ctx context.Context) {
	spec, _ := c.opts.Store.Spec()
	want := wanted(spec, c.opts.Store.Enabled())
	c.mu.Lock()
	var stop []*cameraClient
	for name, e := range c.clients {
		if addr, ok := want[name]; !ok || addr != e.addr {
			stop = append(stop, e)
			delete(c.clients, name)
		}
	}
	c.mu.Unlock()
	c.stop(stop)
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, addr := range want {
		if c.clients[name] == nil {
			c.clients[name] = c.startClient(ctx, name, addr)
		}
	}
}

func (c *Cameras) stopAll() {
	c.mu.Lock()
	var all []*cameraClient
	for name, e := range c.clients {
		all = append(all, e)
		delete(c.clients, name)
	}
	c.mu.Unlock()
	c.stop(all)
}

func (c *Cameras) stop(clients []*cameraClient) {
	for _, e := range clients {
		e.cancel()
		<-e.done
		c.opts.Store.SetCamera(e.name, false, "")
		c.log.Info("camera client stopped", "node", e.name, "addr", e.addr)
	}
}

// startClient starts a camera client until ctx ends or it is stopped.
func (c *Cameras) startClient(ctx context.Context, name, addr string) *cameraClient {
	ctx, cancel := context.WithCancel(ctx)
	e := &cameraClient{name: name, addr: addr, cancel: cancel, done: make(chan struct{})}

	o := c.opts.DeviceOptions
	o.Logger = c.log
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
			c.log.V(1).Info("camera not connected", "node", name, "reason", now.reason)
		}
		c.opts.Store.SetCamera(name, connected, now.reason)
	}
	o.OnUnsolicited = func(r clu.Reply) {
		c.busy.observe(name, r)
		if f := c.relay.Load(); f != nil {
			(*f)(name, r)
		}
	}
	e.client = device.New(name, addr, o)
	go func() {
		defer close(e.done)
		if err := e.client.Run(ctx); err != nil {
			c.log.Error(err, "camera client stopped", "node", name)
		}
	}()
	c.log.Info("camera client started", "node", name, "addr", addr)
	return e
}

// client returns node's camera client, or nil.
func (c *Cameras) client(node string) *device.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.clients[node]; e != nil {
		return e.client
	}
	return nil
}

// State returns whether the client is connected to node's camera and,
// when it is not, why (the camera does not answer, the actor on its port
// is another, the node is not enabled, ...), for status.
func (c *Cameras) State(node string) (connected bool, reason string) {
	cl := c.client(node)
	if cl == nil {
		return false, "no camera client (node not enabled, or the actor not started)"
	}
	ok, err := cl.State()
	if ok {
		return true, ""
	}
	if err == nil {
		return false, "not connected"
	}
	return false, err.Error()
}

// ContainerStarted tells that node's camera container was just
// (re)started: its client dials at once, and again every few tens of
// milliseconds until the camera listens, instead of waiting out its
// backoff (see device.Client.Started).
func (c *Cameras) ContainerStarted(node string) {
	c.busy.forget(node) // a new camera is idle
	if cl := c.client(node); cl != nil {
		cl.Started()
	}
}

// Busy reports whether node's camera is exposing (an expose command in
// flight through fliswarm, or the camera's own exposure state) and why;
// the controller waits for an idle camera before replacing it.
func (c *Cameras) Busy(node string) (bool, string) { return c.busy.busy(node) }
