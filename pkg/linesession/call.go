package linesession

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Call is one command in flight.
type Call[R any] struct {
	// ID is the command's id on the wire.
	ID int

	s       *Session[R]
	onReply func(R)
	inline  bool

	mu        sync.Mutex
	finished  bool
	abandoned bool // the caller gave up; replies are discarded
	final     R
	hasFinal  bool
	err       error
	ended     chan struct{} // closed by finish

	// Queued delivery (not inline, onReply set), by Wait's goroutine.
	queue, spare []R
	qclosed      bool
	wake         chan struct{} // buffered(1)

	// WhenDone's callback, until it is called, and what stops its timeout
	// and its context watch.
	whenDone func(R, error)
	timer    *time.Timer
	stopCtx  func() bool
}

// receive takes one reply of the call; it reports false when the call was
// given up on (the reply is then the caller's to discard).
func (c *Call[R]) receive(r R, terminal bool) bool {
	c.mu.Lock()
	if c.abandoned || c.finished {
		c.mu.Unlock()
		return false
	}
	switch {
	case c.onReply == nil:
	case c.inline:
		c.onReply(r)
	default:
		c.queue = append(c.queue, r)
		if len(c.queue) == 1 {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	if terminal {
		c.final, c.hasFinal = r, true
		c.finishLocked(nil)
	}
	c.mu.Unlock()
	if terminal {
		c.notify()
	}
	return true
}

// finish records how the call ended; only the first outcome counts.
func (c *Call[R]) finish(final R, has bool, err error) {
	c.mu.Lock()
	if has && !c.finished {
		c.final, c.hasFinal = final, true
	}
	c.finishLocked(err)
	c.mu.Unlock()
	c.notify()
}

func (c *Call[R]) finishLocked(err error) {
	if c.finished {
		return
	}
	c.finished = true
	c.err = err
	close(c.ended)
	if c.wake != nil {
		c.qclosed = true
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// abandon ends the call with err unless it ended already; its id stays
// reserved until the peer's terminal reply or the connection's end, and
// the replies meanwhile are discarded.
func (c *Call[R]) abandon(err error) {
	c.mu.Lock()
	if !c.finished {
		c.abandoned = true
		c.finishLocked(err)
	}
	c.mu.Unlock()
	c.notify()
}

// WhenDone is Wait for a caller that must not wait: done is called once
// with the call's outcome when it ends, from whichever goroutine ends it
// (the reading goroutine at the terminal reply or when the connection
// ends, a timer when timeout passes, a goroutine of ctx's when ctx ends;
// at once from WhenDone's caller when the call has ended already). The
// timeout and ctx give the call up as in Wait. It is for a call whose
// replies need no delivering goroutine (Config.Inline, or no onReply): done
// comes after the last onReply call. Call it at most once, and not with
// Wait.
func (c *Call[R]) WhenDone(ctx context.Context, timeout time.Duration, done func(final R, err error)) {
	c.mu.Lock()
	c.whenDone = done
	if !c.finished {
		if timeout > 0 {
			c.timer = time.AfterFunc(timeout, func() { c.abandon(fmt.Errorf("%w after %s", ErrTimeout, timeout)) })
		}
		if ctx.Done() != nil {
			c.stopCtx = context.AfterFunc(ctx, func() { c.abandon(ctx.Err()) })
		}
	}
	c.mu.Unlock()
	c.notify()
}

// notify calls WhenDone's callback once the call has ended; c.mu is not
// held.
func (c *Call[R]) notify() {
	c.mu.Lock()
	done := c.whenDone
	if done == nil || !c.finished {
		c.mu.Unlock()
		return
	}
	c.whenDone = nil
	final, err, timer, stopCtx := c.final, c.err, c.timer, c.stopCtx
	c.timer, c.stopCtx = nil, nil
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if stopCtx != nil {
		stopCtx()
	}
	done(final, err)
}

// deliver calls onReply for the replies queued so far, in order; it
// reports whether there were any, and whether the queue is closed.
func (c *Call[R]) deliver() (delivered, closed bool) {
	c.mu.Lock()
	q := c.queue
	c.queue, c.spare = c.spare[:0], nil // never both the same array
	closed = c.qclosed
	c.mu.Unlock()
	for i := range q {
		c.onReply(q[i])
		q[i] = zero[R]()
	}
	if len(q) > 0 && cap(q) <= 4096 {
		c.mu.Lock()
		c.spare = q[:0]
		c.mu.Unlock()
	}
	return len(q) > 0, closed
}

// Ended is closed once the call has an outcome.
func (c *Call[R]) Ended() <-chan struct{} { return c.ended }

// Wait waits until the call ends: at its terminal reply (returned with a
// nil error), when the connection ends (ErrClosed), when timeout passes
// (ErrTimeout; timeout <= 0 means none) or when ctx ends (ctx's error).
// In the last two cases the call is given up on. Without Config.Inline,
// Wait's own goroutine calls onReply; it returns after the last call, and
// every reply received before the call ended has been delivered.
func (c *Call[R]) Wait(ctx context.Context, timeout time.Duration) (R, error) {
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	done := ctx.Done()
	giveUp := func(err error) {
		c.abandon(err)
		done, timer = nil, nil // once
	}
	if c.wake == nil {
		select {
		case <-c.ended:
		case <-done:
			giveUp(ctx.Err())
		case <-timer:
			giveUp(fmt.Errorf("%w after %s", ErrTimeout, timeout))
		}
	} else {
		for {
			delivered, closed := c.deliver()
			if delivered {
				continue
			}
			if closed {
				break
			}
			select {
			case <-c.wake:
			case <-done:
				giveUp(ctx.Err())
			case <-timer:
				giveUp(fmt.Errorf("%w after %s", ErrTimeout, timeout))
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final, c.err
}
