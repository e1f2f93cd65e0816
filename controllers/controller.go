package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Result is what a reconcile asks of the machinery around it.
type Result struct {
	// RequeueAfter, when positive, has the key processed again after this
	// long (or sooner, if something else enqueues it).
	RequeueAfter time.Duration
}

// KeyReconciler converges one key. It must be idempotent; it never loops
// or sleeps, but returns an error (retried through the rate limiter) or a
// Result asking to come back later.
type KeyReconciler interface {
	Reconcile(ctx context.Context, key string) (Result, error)
}

// Controller runs workers that take keys from a queue and reconcile them,
// as controller-runtime's controller does: a failure is retried through the
// queue's rate limiter, a RequeueAfter is honoured, a success forgets the
// key's failures.
type Controller struct {
	Queue      *Queue
	Reconciler KeyReconciler
	Workers    int
	Log        logr.Logger
	// Metrics, when not nil, gets the duration and error of every
	// reconcile.
	Metrics Metrics
}

// Run processes keys until ctx ends, then shuts the queue down and waits
// for every worker to return.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range max(1, c.Workers) {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.Queue.ShutDown()
	wg.Wait()
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, ok := c.Queue.Get()
	if !ok {
		return false
	}
	defer c.Queue.Done(key)
	start := time.Now()
	res, err := c.Reconciler.Reconcile(ctx, key)
	if c.Metrics != nil && ctx.Err() == nil {
		c.Metrics.ObserveReconcile(key, time.Since(start), err)
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		d := c.Queue.AddRateLimited(key)
		c.Log.Error(err, "reconcile failed", "node", key, "retryIn", d.Round(time.Millisecond).String())
	case res.RequeueAfter > 0:
		c.Queue.Forget(key)
		c.Queue.AddAfter(key, res.RequeueAfter)
	default:
		c.Queue.Forget(key)
	}
	return true
}
