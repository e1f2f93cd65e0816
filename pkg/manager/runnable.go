package manager

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// Runnable is a long-running part of the daemon, as controller-runtime's:
// Start blocks until ctx ends (then returns nil) or the part fails.
type Runnable interface {
	Start(ctx context.Context) error
}

// binder is a Runnable that binds something (a port, a socket) before it
// runs: the daemon's start fails at once when Bind does.
type binder interface {
	Bind() error
}

// RunnableFunc makes a function a Runnable.
type RunnableFunc func(ctx context.Context) error

// Start runs f.
func (f RunnableFunc) Start(ctx context.Context) error { return f(ctx) }

// run starts the parts in order under one error group: each that binds
// binds before the next starts (a failure stops those started and is
// returned at once), ready is called once all run, the first part to fail
// stops the others, and run returns once every part has returned, with
// the first error.
func run(ctx context.Context, parts []Runnable, ready func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		if b, ok := p.(binder); ok {
			if err := b.Bind(); err != nil {
				cancel()
				_ = g.Wait()
				return err
			}
		}
		g.Go(func() error { return p.Start(gctx) })
	}
	if ready != nil {
		ready()
	}
	return g.Wait()
}
