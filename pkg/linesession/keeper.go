package linesession

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Keeper keeps a connection up: it dials, serves the connection until it
// ends, and dials again after an exponential backoff (with jitter, from
// InitialBackoff up to MaxBackoff, starting over after a healthy
// connection). Kick skips the current wait; Pause keeps it from dialling
// until Resume. Its methods are safe for concurrent use.
type Keeper struct {
	initial, max time.Duration
	kick         chan struct{} // buffered(1)

	mu        sync.Mutex
	paused    bool
	fastUntil time.Time     // see KickFor
	fastEvery time.Duration // see KickFor
}

// NewKeeper returns a Keeper with the given backoff bounds.
func NewKeeper(initial, max time.Duration) *Keeper {
	if initial <= 0 {
		initial = 500 * time.Millisecond
	}
	if max < initial {
		max = initial
	}
	return &Keeper{initial: initial, max: max, kick: make(chan struct{}, 1)}
}

// Kick makes the keeper dial now instead of waiting out its backoff, and
// restarts the backoff schedule. A kick while a connection is up (or a
// dial is in progress) is kept for the next wait, so the first attempt
// after that is immediate. It never overrides Pause.
func (k *Keeper) Kick() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// KickFor is Kick for a peer that was just started and will listen any
// moment: while dials fail, the keeper dials again every `every` (instead
// of backing off) until `window` has passed. A good connection ends it.
func (k *Keeper) KickFor(every, window time.Duration) {
	k.mu.Lock()
	k.fastUntil, k.fastEvery = time.Now().Add(window), every
	k.mu.Unlock()
	k.Kick()
}

// fast returns the retry interval while a KickFor window lasts.
func (k *Keeper) fast(connected bool) (time.Duration, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if connected {
		k.fastUntil = time.Time{}
	}
	if k.fastUntil.IsZero() || !time.Now().Before(k.fastUntil) {
		return 0, false
	}
	return k.fastEvery, true
}

// Pause keeps the keeper from dialling until Resume (the caller drops the
// current connection itself).
func (k *Keeper) Pause() {
	k.mu.Lock()
	k.paused = true
	k.mu.Unlock()
}

// Resume ends a Pause and makes the keeper dial now.
func (k *Keeper) Resume() {
	k.mu.Lock()
	k.paused = false
	k.mu.Unlock()
	k.Kick()
}

// Paused reports whether the keeper is paused.
func (k *Keeper) Paused() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.paused
}

// Run dials and serves until ctx ends. serve runs one connection (it must
// close it and return when ctx ends) and reports whether the connection
// was healthy, which restarts the backoff schedule. failed is told about
// every failed dial and the wait before the next one. Run returns when ctx
// ends.
func (k *Keeper) Run(ctx context.Context,
	dial func(ctx context.Context) (net.Conn, error),
	serve func(ctx context.Context, conn net.Conn) (healthy bool),
	failed func(err error, retryIn time.Duration)) {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     k.initial,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         k.max,
	}
	bo.Reset()
	for {
		if !k.waitUnpaused(ctx) {
			return
		}
		conn, err := dial(ctx)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return
		}
		var wait time.Duration
		if err != nil {
			wait = bo.NextBackOff()
			if d, ok := k.fast(false); ok {
				wait = d
			}
			if failed != nil {
				failed(err, wait)
			}
		} else {
			k.fast(true)
			if serve(ctx, conn) {
				bo.Reset()
			}
			wait = bo.NextBackOff()
		}
		if ctx.Err() != nil {
			return
		}
		if k.wait(ctx, wait) {
			bo.Reset()
		}
	}
}

// waitUnpaused blocks while paused; it returns false when ctx ended.
func (k *Keeper) waitUnpaused(ctx context.Context) bool {
	for {
		if !k.Paused() {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-k.kick:
		}
	}
}

// wait sleeps for d, or until Kick or ctx ends; it reports a kick.
func (k *Keeper) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-k.kick:
		return true
	case <-t.C:
		return false
	}
}
