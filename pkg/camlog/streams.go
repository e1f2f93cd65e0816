package camlog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sdss/fliswarm/pkg/engine"
)

// Source is one node's camera container on its engine.
type Source struct {
	Node string
	// Container is the camera container's name (spec.ContainerNameFor).
	Container string
	Engine    Engine
}

// Streams is a request's instance picked on each node, ready to stream.
type Streams struct {
	req   Request
	nodes []picked
}

type picked struct {
	src Source
	in  Instance
}

// Open picks the instance req asks for on every source, in parallel. The
// first failure (in the sources' order, prefixed with its node) is
// returned and nothing streams: a missing container or previous instance
// wraps ErrNoContainer or ErrNoPrevious, an engine that does not answer
// satisfies engine.IsUnreachable.
func Open(ctx context.Context, srcs []Source, req Request) (*Streams, error) {
	out := &Streams{req: req, nodes: make([]picked, len(srcs))}
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() {
			in, err := Pick(ctx, s.Engine, s.Container, req.Previous)
			out.nodes[i], errs[i] = picked{src: s, in: in}, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			if errors.Is(err, ErrNoContainer) || errors.Is(err, ErrNoPrevious) {
				return nil, fmt.Errorf("%s: %w", srcs[i].Node, err)
			}
			return nil, err // the engine's: "<node>: <operation>: ..."
		}
	}
	return out, nil
}

// Instances returns each node's picked instance, in the sources' order.
func (s *Streams) Instances() (nodes []string, ins []Instance) {
	for _, p := range s.nodes {
		nodes, ins = append(nodes, p.src.Node), append(ins, p.in)
	}
	return nodes, ins
}

// Run streams every node's lines at once, calling fn (never twice at
// once) with each line as it comes, and done with each node's end: nil,
// or why its stream failed. It returns when every node's stream ended,
// ctx ended or fn failed (its error).
func (s *Streams) Run(ctx context.Context, fn func(node string, l engine.LogLine) error, done func(node string, err error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		fnErr error
		wg    sync.WaitGroup
	)
	for _, p := range s.nodes {
		wg.Go(func() {
			err := p.in.Stream(ctx, p.src.Engine, s.req, func(l engine.LogLine) error {
				mu.Lock()
				defer mu.Unlock()
				if fnErr != nil {
					return fnErr
				}
				if err := fn(p.src.Node, l); err != nil {
					fnErr = err
					cancel()
					return err
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if fnErr == nil && done != nil {
				done(p.src.Node, err)
			}
		})
	}
	wg.Wait()
	return fnErr
}
