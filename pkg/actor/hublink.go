package actor

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// ErrNoHub is HubLink.Command's error when no hub is configured.
var ErrNoHub = errors.New("no tron hub configured (actor.tron_host)")

// HubLinkOptions configure a HubLink. Only Nodes is required.
type HubLinkOptions struct {
	// Nodes is followed for the spec's hub address and actor name.
	Nodes Nodes
	// Addr, when set, is the hub's address instead of the spec's
	// tron_host:tron_port.
	Addr string
	// Logger receives the connection's logs. Default: discard.
	Logger logr.Logger
}

// HubLink keeps fliswarm's connection to the tron hub: Start follows the
// spec and keeps one TronClient connected to its hub address (none when
// tron_host is empty), replacing it when the address changes. Each
// client asks the hub to connect back to the actor (startNubs) on every
// connection it makes. HubLink is the actor's Hub.
type HubLink struct {
	opts HubLinkOptions
	log  logr.Logger

	mu     sync.Mutex
	client *TronClient // nil when no hub is configured or before Start
}

// NewHubLink returns the hub connection's supervisor; nothing runs until
// Start.
func NewHubLink(opts HubLinkOptions) *HubLink {
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &HubLink{opts: opts, log: opts.Logger}
}

// hubAddr is the hub address the spec names, "" for none.
func hubAddr(spec *v1.Swarm) string {
	if spec.Actor.TronHost == "" || spec.Actor.TronPort <= 0 {
		return ""
	}
	return net.JoinHostPort(spec.Actor.TronHost, strconv.Itoa(spec.Actor.TronPort))
}

// actorName is the spec's actor name, or the default.
func actorName(spec *v1.Swarm) string {
	if spec.Actor.Name != "" {
		return spec.Actor.Name
	}
	return v1.DefaultActorName
}

// target is the address to connect to and the actor's name.
func (l *HubLink) target() (addr, name string) {
	spec, _ := l.opts.Nodes.Spec()
	addr = l.opts.Addr
	if addr == "" {
		addr = hubAddr(spec)
	}
	return addr, actorName(spec)
}

// Start keeps the connection until ctx ends; it returns nil once the
// client has stopped.
func (l *HubLink) Start(ctx context.Context) error {
	if l.opts.Nodes == nil {
		return errors.New("hub link: no Nodes given")
	}
	changes, unsubscribe := l.opts.Nodes.Subscribe()
	defer unsubscribe()
	var run *tronRun // the client running now, nil for none
	defer func() { l.halt(run) }()
	for {
		if addr, name := l.target(); run == nil && addr != "" || run != nil && (addr != run.addr || name != run.name) {
			l.halt(run)
			run = nil
			if addr != "" {
				run = l.run(ctx, addr, name)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changes:
		}
	}
}

// tronRun is one running TronClient.
type tronRun struct {
	addr, name string
	cancel     context.CancelFunc
	done       chan struct{}
}

// run starts a client of the hub at addr for the actor called name.
func (l *HubLink) run(ctx context.Context, addr, name string) *tronRun {
	t := NewTronClient(addr, name+"."+name, l.log)
	t.StartNubs(name) // as CLU: ask tron to connect back, on every connection
	ctx, cancel := context.WithCancel(ctx)
	r := &tronRun{addr: addr, name: name, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = t.Run(ctx) }()
	l.mu.Lock()
	l.client = t
	l.mu.Unlock()
	return r
}

// halt stops r's client (nil: nothing runs) and waits until it stopped.
func (l *HubLink) halt(r *tronRun) {
	if r == nil {
		return
	}
	r.cancel()
	<-r.done
	l.mu.Lock()
	l.client = nil
	l.mu.Unlock()
}

func (l *HubLink) current() *TronClient {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.client
}

// Command sends command to the actor called target through the hub (see
// TronClient.Command); ErrNoHub when no hub is configured.
func (l *HubLink) Command(ctx context.Context, target, command string) (HubReply, error) {
	t := l.current()
	if t == nil {
		if addr, _ := l.target(); addr != "" {
			return HubReply{}, errors.New("tron: not connected to the hub at " + addr + " yet")
		}
		return HubReply{}, ErrNoHub
	}
	return t.Command(ctx, target, command)
}

// State returns the connection's state; Addr is "" when no hub is
// configured.
func (l *HubLink) State() HubState {
	if t := l.current(); t != nil {
		return t.State()
	}
	addr, _ := l.target()
	return HubState{Addr: addr}
}
