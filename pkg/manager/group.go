package manager

import (
	"context"
	"sync"
)

// group runs the daemon's components as one: the first to fail stops the
// others (through the shared context), and Wait returns once every one has
// returned, with the first error.
type group struct {
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) (*group, context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	return &group{cancel: cancel}, ctx
}

// Go runs f; an error from it stops the group.
func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.stop(err)
		}
	})
}

func (g *group) stop(err error) {
	g.once.Do(func() { g.err = err })
	g.cancel(err)
}

// Wait blocks until every component has returned.
func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel(nil)
	return g.err
}
