package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// Engine is what the controller needs of a node's Docker Engine.
// *engine.Client satisfies it.
type Engine interface {
	Ping(ctx context.Context) error
	ListContainers(ctx context.Context, labels map[string]string, names ...string) ([]engine.Container, error)
	// ListStates is ListContainers without the inspects (one request).
	ListStates(ctx context.Context, labels map[string]string, names ...string) ([]engine.Container, error)
	InspectContainer(ctx context.Context, id string) (engine.Container, error)
	CreateContainer(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	StopContainer(ctx context.Context, id string, grace time.Duration) error
	RenameContainer(ctx context.Context, id, name string) error
	UnpauseContainer(ctx context.Context, id string) error
	RemoveContainer(ctx context.Context, id string, force bool) error
	ContainerLogs(ctx context.Context, id string, lines int) ([]string, error)
	InspectImage(ctx context.Context, ref string) (engine.Image, error)
	PullImage(ctx context.Context, ref string, opts engine.PullOptions) error
	RegistryDigest(ctx context.Context, ref string) (string, error)
	InspectVolume(ctx context.Context, name string) (engine.Volume, error)
	CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (engine.Volume, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	Events(ctx context.Context) (<-chan engine.Event, <-chan error)
	Close() error
}

// Engines opens each node's engine once and reopens it when the node's
// connection settings change (its address, TLS material, ssh identity).
// The reconciler and the event source share it.
type Engines struct {
	mu     sync.Mutex
	open   func(node string, conn v1.EngineConnection) (Engine, error)
	byNode map[string]openEngine
}

type openEngine struct {
	conn v1.EngineConnection
	eng  Engine
}

// NewEngines returns a cache that opens engines with open.
func NewEngines(open func(node string, conn v1.EngineConnection) (Engine, error)) *Engines {
	return &Engines{open: open, byNode: map[string]openEngine{}}
}

// Get returns node's engine reached through conn, opening it if needed.
func (e *Engines) Get(node string, conn v1.EngineConnection) (Engine, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if o, ok := e.byNode[node]; ok {
		if o.conn == conn {
			return o.eng, nil
		}
		_ = o.eng.Close()
		delete(e.byNode, node)
	}
	eng, err := e.open(node, conn)
	if err != nil {
		return nil, err
	}
	e.byNode[node] = openEngine{conn: conn, eng: eng}
	return eng, nil
}

// Close closes every engine.
func (e *Engines) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for n, o := range e.byNode {
		_ = o.eng.Close()
		delete(e.byNode, n)
	}
}
