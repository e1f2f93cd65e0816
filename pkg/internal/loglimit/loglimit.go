// Package loglimit bounds how often a log line about outside input is
// written, so that a peer sending garbage cannot flood the log, and counts
// the lines it held back so that the next line written can say how many.
// It is golang.org/x/time/rate's token bucket with that count; the opscore
// server and the camera client use it for their input problems.
package loglimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter lets through at most burst lines at once and one more every
// interval after that. Its methods are safe for concurrent use.
type Limiter struct {
	now func() time.Time
	lim *rate.Limiter

	mu         sync.Mutex
	suppressed int
}

// New returns a Limiter of burst lines refilled at one per every; now is
// its clock (nil: time.Now).
func New(every time.Duration, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, lim: rate.NewLimiter(rate.Every(every), max(burst, 1))}
}

// Allow reports whether a line may be logged now and, if so, how many
// lines were held back since the last one let through.
func (l *Limiter) Allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.AllowN(l.now(), 1) {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
