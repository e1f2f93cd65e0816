package opscore

import (
	"sync"
	"time"
)

// holds lets the start holds go (see WithStartHold) with one timer for
// the whole server instead of one per command: arming a timer wakes the
// runtime's network poller, which a command relayed in a fraction of a
// millisecond should not pay for. The timer fires at most every d/2, and a
// command is let go between d and 1.5d after its start, unless it ended
// before.
type holds struct {
	d time.Duration

	mu    sync.Mutex
	cmds  []*Command  // held commands, oldest first
	since []time.Time // when each was held
	timer *time.Timer
	armed bool
}

func newHolds(d time.Duration) *holds {
	q := &holds{d: d}
	q.timer = time.AfterFunc(time.Hour, q.expire)
	q.timer.Stop()
	return q
}

// add holds c; the timer is armed only when it is not already.
func (q *holds) add(c *Command) {
	now := time.Now()
	q.mu.Lock()
	q.cmds = append(q.cmds, c)
	q.since = append(q.since, now)
	if !q.armed {
		q.armed = true
		q.timer.Reset(q.d)
	}
	q.mu.Unlock()
}

// expire lets go the holds older than d (a hold already ended is a no-op)
// and re-arms the timer for the oldest one left, d/2 from now at the
// soonest.
func (q *holds) expire() {
	now := time.Now()
	q.mu.Lock()
	n := 0
	for n < len(q.since) && now.Sub(q.since[n]) >= q.d {
		n++
	}
	due := append([]*Command(nil), q.cmds[:n]...)
	clear(q.cmds[:n])
	q.cmds = append(q.cmds[:0], q.cmds[n:]...)
	q.since = append(q.since[:0], q.since[n:]...)
	if len(q.cmds) > 0 {
		q.timer.Reset(max(q.d-now.Sub(q.since[0]), q.d/2))
	} else {
		q.armed = false
	}
	q.mu.Unlock()
	for _, c := range due {
		c.unhold()
	}
}
