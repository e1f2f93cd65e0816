package device

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/internal/loglimit"
	"github.com/sdss/fliswarm/pkg/linesession"
)

type session = linesession.Session[clu.Reply]

// Client is the connection to one flicamera actor.
//
// Lifecycle: Run keeps a connection up until its context ends, redialling
// with exponential backoff after a failure or a drop. A new connection is
// verified before it counts as connected: the camera must answer a `ping`
// within PingTimeout, as the actor named like the node (see AnySender).
// While connected, an idle connection is pinged every PingInterval and
// dropped when the camera stops answering. Kick skips the current backoff
// wait (the reconciler calls it when it knows the container has just been
// (re)started). Disconnect drops the connection and lets Run reconnect on
// its usual schedule; Pause drops it and keeps Run from dialling until
// Resume (use it around recreating the container). To stop for good,
// cancel Run's context.
//
// All methods are safe for concurrent use.
type Client struct {
	name   string
	addr   string
	opts   Options
	log    logr.Logger
	keeper *linesession.Keeper

	running   atomic.Bool
	discarded atomic.Uint64
	badLines  *loglimit.Limiter // undecodable and long lines, logged at most one a second

	mu     sync.Mutex
	cur    *session // the current connection, verified or not
	sess   *session // the current connection once verified; nil otherwise
	reason error    // why not connected (nil when connected)
}

// New returns a client for the camera actor called name (the node name,
// used in errors and logs, and the sender its replies must carry)
// listening at addr ("host:port"). It does not connect: call Run.
func New(name, addr string, opts Options) *Client {
	opts = opts.withDefaults()
	return &Client{
		name:     name,
		addr:     addr,
		opts:     opts,
		log:      opts.Logger.WithValues("camera", name),
		keeper:   linesession.NewKeeper(opts.InitialBackoff, opts.MaxBackoff),
		reason:   fmt.Errorf("camera %s: %w: not connected yet", name, ErrNotConnected),
		badLines: loglimit.New(time.Second, 1, nil),
	}
}

// Name returns the camera's name.
func (c *Client) Name() string { return c.name }

// Addr returns the address the client dials.
func (c *Client) Addr() string { return c.addr }

// Connected reports whether a verified connection to the camera is up now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A paused client is not connected even while its reader has not yet
	// seen the dropped connection.
	return c.sess != nil && c.sess.Err() == nil && !c.keeper.Paused()
}

// State returns whether the client is connected and, when it is not, the
// latest reason (a failed dial, a dropped connection, a wrong sender).
func (c *Client) State() (connected bool, reason error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess != nil && c.sess.Err() == nil && !c.keeper.Paused() {
		return true, nil
	}
	return false, c.reason
}

// Discarded returns how many camera replies were discarded because the
// command they answer had been given up on (its user left, or it timed
// out) while the camera still ran it.
func (c *Client) Discarded() uint64 { return c.discarded.Load() }

// InFlight returns how many commands hold an id on the connection now
// (the client's own pings included, and commands given up on whose end the
// camera has not sent yet).
func (c *Client) InFlight() int {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return 0
	}
	return s.InFlight()
}

// Kick makes Run dial now instead of waiting out its backoff, and restarts
// the backoff schedule. While a connection is up, or a dial is in
// progress, the kick is kept for the next wait: the first attempt after
// that is immediate (the reconciler kicks when it has just restarted the
// container, possibly before the old connection is seen to drop). It never
// overrides Pause.
func (c *Client) Kick() { c.keeper.Kick() }

// Started tells the client that the camera's container was just started:
// it dials now and, while the camera's port does not answer yet, again
// every StartedRetry for StartedWindow, instead of backing off (a camera
// is back as soon as it listens). Like Kick, it never overrides Pause.
func (c *Client) Started() { c.keeper.KickFor(StartedRetry, StartedWindow) }

// StartedRetry and StartedWindow: see Started.
const (
	StartedRetry  = 25 * time.Millisecond
	StartedWindow = 3 * time.Second
)

// Disconnect drops the current connection, if any. Every command in flight
// ends with ErrDisconnected. Run reconnects after its backoff wait (or at
// the next Kick).
func (c *Client) Disconnect() { c.drop(errDisconnectRequested) }

// Pause drops the current connection like Disconnect and keeps Run from
// dialling until Resume is called. Sends fail with ErrNotConnected
// meanwhile.
func (c *Client) Pause() {
	c.keeper.Pause()
	c.drop(errPaused)
}

// Resume ends a Pause and makes Run dial now.
func (c *Client) Resume() { c.keeper.Resume() }

func (c *Client) drop(cause error) {
	c.mu.Lock()
	s := c.cur
	c.mu.Unlock()
	if s != nil {
		s.Close(cause)
	}
}
