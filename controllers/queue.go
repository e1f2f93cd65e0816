package controllers

import (
	"sync"
	"time"
)

// Queue is a work queue of node names with client-go's guarantees: a key
// is never handed to two workers at once; adding a key that is already
// waiting is a no-op (triggers collapse); a key added while it is being
// processed is processed again once, after Done; AddAfter only ever moves
// a key's delayed add earlier; and failures come back through the rate
// limiter.
type Queue struct {
	mu         sync.Mutex
	cond       *sync.Cond
	order      []string
	dirty      map[string]bool
	processing map[string]bool
	delayed    map[string]*delayedAdd
	shutdown   bool

	limiter RateLimiter
	clock   Clock
}

type delayedAdd struct {
	at    time.Time
	timer Timer
}

// NewQueue returns an empty queue. A nil clock is the wall clock; a nil
// limiter is DefaultRateLimiter.
func NewQueue(limiter RateLimiter, clock Clock) *Queue {
	if clock == nil {
		clock = RealClock{}
	}
	if limiter == nil {
		limiter = DefaultRateLimiter(clock)
	}
	q := &Queue{
		dirty:      map[string]bool{},
		processing: map[string]bool{},
		delayed:    map[string]*delayedAdd{},
		limiter:    limiter,
		clock:      clock,
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
	// A delayed add of the key stays: as in client-go, it still fires.
	q.dirty[key] = true
	if q.processing[key] {
		return // queued again by Done
	}
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter enqueues key after d. If key already has a delayed add that
// comes sooner, this one is dropped; if it comes later, it is replaced.
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
	at := q.clock.Now().Add(d)
	if old, ok := q.delayed[key]; ok {
		if !at.Before(old.at) {
			return
		}
		old.timer.Stop()
	}
	entry := &delayedAdd{at: at}
	entry.timer = q.clock.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.delayed[key] == entry {
			delete(q.delayed, key)
			q.addLocked(key)
		}
	})
	q.delayed[key] = entry
}

// AddRateLimited enqueues key after the rate limiter's delay and returns
// that delay.
func (q *Queue) AddRateLimited(key string) time.Duration {
	d := q.limiter.When(key)
	q.AddAfter(key, d)
	return d
}

// Forget clears key's failures after a success.
func (q *Queue) Forget(key string) { q.limiter.Forget(key) }

// NumRequeues is how many failures key has had in a row.
func (q *Queue) NumRequeues(key string) int { return q.limiter.NumRequeues(key) }

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

// Len is the number of keys ready to be processed.
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
	for _, d := range q.delayed {
		d.timer.Stop()
	}
	q.delayed = map[string]*delayedAdd{}
	q.cond.Broadcast()
}
