package controllers

import (
	"time"
)

// CrashBackoff is the crash-loop schedule, as the kubelet's but faster at
// first: the first restart of a camera that stopped is immediate; each
// further stop soon after a start doubles the wait, from Initial up to
// Max; a camera that ran for ResetAfter starts the count again.
type CrashBackoff struct {
	Initial, Max, ResetAfter time.Duration
}

// DefaultCrashBackoff is 0.1 s doubling to 5 minutes, reset after 10
// minutes of running. Each wait is half Docker's `--restart always` wait
// after the same stop (0.1 s doubling to 1 minute), so a camera killed
// several times in a row is never back later than under Docker's policy,
// while the 5-minute ceiling makes a camera that loops for minutes cost
// fewer starts than Docker's (make bench measures both).
var DefaultCrashBackoff = CrashBackoff{Initial: 100 * time.Millisecond, Max: 5 * time.Minute, ResetAfter: 10 * time.Minute}

// crashTracker follows one node's camera stops. It is pure bookkeeping
// on times it is given.
type crashTracker struct {
	policy CrashBackoff
	// stops is how many times in a row the camera stopped soon after it
	// started.
	stops int
	// lastStop identifies the stop last counted (container and finish
	// time), so that observing one stop twice counts it once.
	lastStop  string
	stoppedAt time.Time
	exitCode  int
	logs      []string
	// announced is the stop whose wait was logged.
	announced string
}

// observeStop counts a stop of container id that ran from started to
// finished, once. It reports whether this stop is new.
func (c *crashTracker) observeStop(id string, started, finished time.Time, exitCode int, now time.Time) bool {
	if finished.IsZero() {
		finished = now
	}
	key := id + "@" + finished.String()
	if key == c.lastStop {
		return false
	}
	c.lastStop = key
	ran := finished.Sub(started)
	if started.IsZero() || ran >= c.policy.ResetAfter {
		c.stops = 1
	} else {
		c.stops++
	}
	c.stoppedAt, c.exitCode = finished, exitCode
	return true
}

// wait is the backoff before the next start after the stops counted.
func (c *crashTracker) wait() time.Duration {
	if c.stops <= 1 {
		return 0
	}
	return doubling(c.policy.Initial, c.policy.Max, c.stops-2)
}

// nextStart is when the camera may be started again.
func (c *crashTracker) nextStart() time.Time { return c.stoppedAt.Add(c.wait()) }

// ranLongEnough forgets the stops of a camera that has run since started
// for ResetAfter.
func (c *crashTracker) ranLongEnough(started, now time.Time) {
	if !started.IsZero() && now.Sub(started) >= c.policy.ResetAfter {
		c.stops, c.logs = 0, nil
	}
}

// forget clears the count of stops (their cause was not the camera).
func (c *crashTracker) forget() { c.stops, c.logs = 0, nil }

// looping reports whether restarts are being backed off.
func (c *crashTracker) looping() bool { return c.stops > 1 }
