package controllers

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimiter says how long a key must wait before it is processed again
// after a failure, as client-go's workqueue rate limiters do.
type RateLimiter interface {
	// When returns the delay before key is retried, counting one more
	// failure.
	When(key string) time.Duration
	// Forget clears key's failures.
	Forget(key string)
	// NumRequeues is how many failures key has had since it was last
	// forgotten.
	NumRequeues(key string) int
}

// ItemBackoff is per-key exponential backoff: base doubling to max.
type ItemBackoff struct {
	mu       sync.Mutex
	failures map[string]int
	base     time.Duration
	max      time.Duration
}

// NewItemBackoff returns a per-key backoff from base doubling up to max.
func NewItemBackoff(base, max time.Duration) *ItemBackoff {
	return &ItemBackoff{failures: map[string]int{}, base: base, max: max}
}

// When implements RateLimiter.
func (b *ItemBackoff) When(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.failures[key]
	b.failures[key] = n + 1
	return doubling(b.base, b.max, n)
}

// Forget implements RateLimiter.
func (b *ItemBackoff) Forget(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.failures, key)
}

// NumRequeues implements RateLimiter.
func (b *ItemBackoff) NumRequeues(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures[key]
}

// doubling is base·2^n, capped at max.
func doubling(base, max time.Duration, n int) time.Duration { return growing(base, max, 2, n) }

// growing is base·factor^n, capped at max.
func growing(base, max time.Duration, factor float64, n int) time.Duration {
	d := float64(base) * math.Pow(factor, float64(n))
	if d > float64(max) {
		return max
	}
	return time.Duration(d)
}

// BucketLimiter is an overall token bucket over every key: it bounds how
// fast failures of all nodes together are retried.
type BucketLimiter struct {
	limiter *rate.Limiter
	clock   Clock
}

// NewBucketLimiter allows qps retries a second on average, burst at once.
func NewBucketLimiter(qps float64, burst int, clock Clock) *BucketLimiter {
	return &BucketLimiter{limiter: rate.NewLimiter(rate.Limit(qps), burst), clock: clock}
}

// When implements RateLimiter.
func (b *BucketLimiter) When(string) time.Duration {
	return b.limiter.ReserveN(b.clock.Now(), 1).DelayFrom(b.clock.Now())
}

// Forget implements RateLimiter (the bucket keeps no per-key state).
func (b *BucketLimiter) Forget(string) {}

// NumRequeues implements RateLimiter.
func (b *BucketLimiter) NumRequeues(string) int { return 0 }

// MaxOf is the longest delay of several limiters.
type MaxOf []RateLimiter

// When implements RateLimiter.
func (m MaxOf) When(key string) time.Duration {
	var d time.Duration
	for _, l := range m {
		d = max(d, l.When(key))
	}
	return d
}

// Forget implements RateLimiter.
func (m MaxOf) Forget(key string) {
	for _, l := range m {
		l.Forget(key)
	}
}

// NumRequeues implements RateLimiter.
func (m MaxOf) NumRequeues(key string) int {
	n := 0
	for _, l := range m {
		n = max(n, l.NumRequeues(key))
	}
	return n
}

// DefaultRateLimiter is the controller's: per node, 1 s doubling to 60 s;
// over all nodes, 10 retries a second with bursts of 100.
func DefaultRateLimiter(clock Clock) RateLimiter {
	return MaxOf{NewItemBackoff(time.Second, time.Minute), NewBucketLimiter(10, 100, clock)}
}
