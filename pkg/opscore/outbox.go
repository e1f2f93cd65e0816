package opscore

import (
	"errors"
	"os"
	"time"
)

// A writer's buffer larger than keepBuffer is released once written, so
// that memory goes back down after a flood.
const keepBuffer = 1 << 20

// reply queues a reply line to this user.
func (c *conn) reply(uid, cmdID int, code Code, kws ...Keyword) {
	b := getScratch()
	*b = append(AppendReply(*b, uid, cmdID, code, kws...), '\n')
	c.enqueue(*b, code.Terminal())
	putScratch(b)
}

// queue copies lines to the backlog for the writer (see enqueue).
func (c *conn) queue(lines []byte) { c.enqueue(lines, false) }

// enqueue copies lines (each ending in a newline) to the backlog without
// ever blocking; a user whose backlog would exceed the bound is dropped.
//
// A command's last lines (final) are the ones a client waits for: when
// nothing is queued or being written, the sender writes them itself, as
// far as the socket takes them without waiting, and leaves the rest to the
// writer. That saves a hand-over to the writer on every command's round
// trip. Other lines always go through the writer, which sends everything
// queued in one write (a flood is not written a line per syscall).
func (c *conn) enqueue(line []byte, final bool) {
	c.omu.Lock()
	if c.closed {
		c.omu.Unlock()
		return
	}
	if backlog := len(c.obuf) + c.writing + len(line); backlog > c.srv.maxBacklog {
		c.omu.Unlock()
		c.srv.observer.UserDropped()
		c.abort("backlog over the limit: the client is not reading fast enough",
			"backlogBytes", backlog, "maxBacklogBytes", c.srv.maxBacklog)
		return
	}
	if final && c.raw != nil && len(c.obuf) == 0 && c.writing == 0 {
		c.writing = len(line) // keeps the writer off until it is done
		c.omu.Unlock()
		n := c.raw.tryWrite(line)
		c.omu.Lock()
		c.writing = 0
		if n < len(line) && !c.closed {
			// The socket is full: what is left goes before anything queued
			// meanwhile.
			rest := make([]byte, 0, len(line)-n+len(c.obuf))
			c.obuf = append(append(rest, line[n:]...), c.obuf...)
		}
		pending := len(c.obuf) > 0 && !c.closed
		c.omu.Unlock()
		if pending {
			c.wakeWriter()
		}
		return
	}
	wasEmpty := len(c.obuf) == 0
	c.obuf = append(c.obuf, line...)
	c.omu.Unlock()
	if wasEmpty {
		c.wakeWriter()
	}
}

func (c *conn) wakeWriter() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// backlog returns the bytes queued and not yet written.
func (c *conn) backlog() int {
	c.omu.Lock()
	defer c.omu.Unlock()
	return len(c.obuf) + c.writing
}

// writeLoop writes the backlog: each time, everything queued so far in one
// write, until the connection is aborted or drained.
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	var spare []byte
	// take swaps the backlog for the spare buffer; nil when it is empty,
	// or while a sender writes (busy: it wakes the writer when done).
	take := func() (b []byte, busy bool) {
		c.omu.Lock()
		defer c.omu.Unlock()
		// writing is not the writer's own here: a sender is writing.
		if len(c.obuf) == 0 || c.closed || c.writing > 0 {
			return nil, c.writing > 0 && !c.closed
		}
		b = c.obuf
		c.obuf = spare[:0]
		c.writing = len(b)
		return b, false
	}
	// done keeps b for the next take; writeAll has brought writing to 0.
	done := func(b []byte) {
		if cap(b) <= keepBuffer {
			spare = b[:0]
		} else {
			spare = nil
		}
	}
	for {
		select {
		case <-c.wake:
			for b, _ := take(); b != nil; b, _ = take() {
				if !c.writeAll(b) {
					return
				}
				done(b)
			}
		case <-c.drain:
			end := time.Now().Add(drainTimeout)
			_ = c.nc.SetWriteDeadline(end)
			for {
				b, busy := take()
				if b == nil {
					if !busy || time.Now().After(end) {
						return
					}
					time.Sleep(time.Millisecond) // a sender is writing
					continue
				}
				if _, err := c.nc.Write(b); err != nil {
					return
				}
				c.omu.Lock()
				c.writing = 0
				c.omu.Unlock()
				done(b)
			}
		case <-c.quit:
			return
		}
	}
}

// writeAll writes b, dropping the user when it has made no progress for
// the stall time. Each write's deadline is a fraction of the stall time
// (and never beyond the stall time after the last progress), so that a
// slow reader's partial progress is seen: a user is dropped no earlier than
// the stall time after its last progress, and at most one such fraction
// later.
func (c *conn) writeAll(b []byte) bool {
	stall := c.srv.stall
	step := min(max(stall/4, time.Millisecond), 5*time.Second)
	last := time.Now()
	for len(b) > 0 {
		deadline := time.Now().Add(step)
		if end := last.Add(stall); end.Before(deadline) {
			deadline = end
		}
		_ = c.nc.SetWriteDeadline(deadline)
		n, err := c.nc.Write(b)
		b = b[n:]
		if n > 0 {
			last = time.Now()
			c.omu.Lock()
			c.writing -= n
			c.omu.Unlock()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if stalled := time.Since(last); stalled >= stall {
				c.srv.observer.UserDropped()
				c.abort("no write progress: the client is not reading",
					"stalledFor", stalled.Round(time.Millisecond).String(), "backlogBytes", c.backlog())
				return false
			}
		default:
			c.abort("write failed", "error", err)
			return false
		}
	}
	return true
}
