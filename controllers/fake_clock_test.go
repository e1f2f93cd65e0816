package controllers

import (
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// fakeClock is a Clock that moves only when a test steps it. Timers due
// by the new time fire in the order they are due, each with the clock set
// to its due time, in the stepping goroutine (never under the clock's
// lock, so a callback may read the clock or set a new timer).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*fakeTimer
}

type fakeTimer struct {
	c   *fakeClock
	at  time.Time
	seq int // ties fire in the order they were set
	f   func()
	// resync: set by Resync, whose goroutine enqueues the nodes and sets
	// the next one after this fires.
	resync bool
	// image: set by watchImage, which has asked the registry and acted on
	// the answer when it sets this.
	image bool
}

// epoch is the fake clock's start: any fixed time will do.
var epoch = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch} }

// Now implements Clock.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc implements Clock.
func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{c: c, at: c.now.Add(d), seq: c.seq, f: f, resync: calledFrom(".Resync"), image: calledFrom(".watchImage")}
	c.timers = append(c.timers, t)
	return t
}

// Stop implements Timer.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			return true
		}
	}
	return false
}

// Step moves the clock d forward, firing every timer due meanwhile
// (including those set by the callbacks) in order.
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool {
			a, b := c.timers[i], c.timers[j]
			return a.at.Before(b.at) || (a.at.Equal(b.at) && a.seq < b.seq)
		})
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		if t.at.After(c.now) {
			c.now = t.at
		}
		c.mu.Unlock()
		t.f()
	}
}

// Next is when the earliest pending timer is due.
func (c *fakeClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, t := range c.timers {
		if next.IsZero() || t.at.Before(next) {
			next = t.at
		}
	}
	return next, !next.IsZero()
}

// Since is how much fake time passed since epoch.
func (c *fakeClock) Since() time.Duration { return c.Now().Sub(epoch) }

// ResyncPending reports whether Resync has its next timer set: it has
// then enqueued the nodes of the last one.
func (c *fakeClock) ResyncPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.resync {
			return true
		}
	}
	return false
}

// ImagePending reports whether watchImage has its next timer set.
func (c *fakeClock) ImagePending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.timers {
		if t.image {
			return true
		}
	}
	return false
}

// calledFrom reports whether a function whose name ends in suffix is on
// the caller's stack.
func calledFrom(suffix string) bool {
	pc := make([]uintptr, 16)
	frames := runtime.CallersFrames(pc[:runtime.Callers(3, pc)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, suffix) {
			return true
		}
		if !more {
			return false
		}
	}
}
