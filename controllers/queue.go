package controllers

import (
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Queue is a work queue of node names with the guarantees a controller
// needs: a key is never handed to two workers at once, adding a key that
// is already waiting is a no-op (triggers collapse), a key added while it
// is being processed is processed again once, after Done, and failures
// come back after a per-key exponential backoff.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	dirty      map[string]bool
	processing map[string]bool
	backoffs   map[string]*backoff.ExponentialBackOff
	timers     map[string]*time.Timer
	shutdown   bool

	initial, max time.Duration
}

// NewQueue returns a queue whose retries start after initial and double up
// to max.
func NewQueue(initial, max time.Duration) *Queue {
	q := &Queue{
		dirty:      map[string]bool{},
		processing: map[string]bool{},
		backoffs:   map[string]*backoff.ExponentialBackOff{},
		timers:     map[string]*time.Timer{},
		initial:    initial,
		max:        max,
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add enqueues key now.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue) addLocked(key string) {
	if q.shutdown || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return // re-queued by Done
	}
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter enqueues key after d. A later AddAfter for the same key
// replaces an earlier one only if it fires sooner.
func (q *Queue) AddAfter(key string, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	if t, ok := q.timers[key]; ok {
		t.Stop()
	}
	q.timers[key] = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.timers, key)
		q.addLocked(key)
	})
}

// AddRateLimited enqueues key after its next backoff interval and returns
// that interval.
func (q *Queue) AddRateLimited(key string) time.Duration {
	q.mu.Lock()
	b, ok := q.backoffs[key]
	if !ok {
		b = q.newBackoff()
		q.backoffs[key] = b
	}
	d := b.NextBackOff()
	q.mu.Unlock()
	q.AddAfter(key, d)
	return d
}

// newBackoff is the retry schedule of one key: doubling from initial to
// max, with ±20% jitter.
func (q *Queue) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = q.initial
	b.MaxInterval = q.max
	b.Multiplier = 2
	b.RandomizationFactor = 0.2
	b.Reset()
	return b
}

// Forget resets key's backoff after a success.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.backoffs, key)
}

// Get blocks until a key is ready and marks it processing. ok is false
// once the queue is shut down.
func (q *Queue) Get() (key string, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if q.shutdown {
		return "", false
	}
	key, q.order = q.order[0], q.order[1:]
	q.processing[key] = true
	delete(q.dirty, key)
	return key, true
}

// Done marks key processed; if it was added meanwhile it is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] && !q.shutdown {
		q.order = append(q.order, key)
		q.cond.Signal()
	}
}

// Len is the number of keys waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown stops the queue; Get returns ok=false from then on.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for _, t := range q.timers {
		t.Stop()
	}
	q.cond.Broadcast()
}
