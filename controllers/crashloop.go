package controllers

import (
	"time"
)

// CrashBackoff is the crash-loop schedule, as the kubelet's but faster at
// first: the first restart of a camera that stopped is immediate; each
// further stop soon after a start multiplies the wait, from Initial up to
// Max; a camera that ran for ResetAfter starts the count again.
//
// The wait doubles after a camera that came up (the actor connected to
// it) and then stopped: a camera that crashes while it works is worth
// restarting soon, as it may well work again. It grows by
// NeverUpFactor after a camera that stopped before it ever came up (an
// environment or a device it cannot use): that rarely mends itself within
// seconds, and each start costs the node a container start.
type CrashBackoff struct {
	Initial, Max, ResetAfter time.Duration
	NeverUpFactor            float64
}

// DefaultCrashBackoff is 0.1 s doubling to 5 minutes (quadrupling for a
// camera that never came up), reset after 10 minutes of running. Each
// doubling wait is half Docker's `--restart always` wait after the same
// stop (0.1 s doubling to 1 minute), so a camera killed several times in
// a row is never back later than under Docker's policy; a camera that
// cannot start is started fewer times than under Docker's policy (make
// bench measures both).
var DefaultCrashBackoff = CrashBackoff{Initial: 100 * time.Millisecond, Max: 5 * time.Minute, ResetAfter: 10 * time.Minute, NeverUpFactor: 4}

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
	// cameUp: the camera of the last stop had come up before it stopped.
	cameUp bool
	logs   []string
	// announced is the stop whose wait was logged.
	announced string
}

// observeStop counts a stop of container id that ran from started to
// finished, once; cameUp says whether its camera came up before. It
// reports whether this stop is new.
func (c *crashTracker) observeStop(id string, started, finished time.Time, exitCode int, cameUp bool, now time.Time) bool {
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
	c.stoppedAt, c.exitCode, c.cameUp = finished, exitCode, cameUp
	return true
}

// wait is the backoff before the next start after the stops counted.
func (c *crashTracker) wait() time.Duration {
	if c.stops <= 1 {
		return 0
	}
	factor := 2.0
	if !c.cameUp && c.policy.NeverUpFactor > factor {
		factor = c.policy.NeverUpFactor
	}
	return growing(c.policy.Initial, c.policy.Max, factor, c.stops-2)
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
