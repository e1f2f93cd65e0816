package opscore

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
)

// Handler runs commands. Handle is called in its own goroutine for every
// command (commands from one user run concurrently), after the server has
// sent the command's `>` reply. It should end the command with Finish,
// Fail or a terminal Write, and return when ctx is cancelled (the user
// disconnected or the server is stopping). If it returns without ending
// the command, or panics, the server fails the command for it.
type Handler interface {
	Handle(ctx context.Context, cmd *Command)
}

// Starter is an optional interface of a Handler, for the commands that
// need no goroutine of their own: a command relayed to a device whose
// replies, and its end, are written from the device's reader, say.
// TryStart is called on the user's reading goroutine, after the command's
// `>` has been written, and must not block. It returns false, having
// written nothing, for a command it does not start: Handle then runs it as
// usual. When it returns true the command is under way and the handler
// must end it (Finish, Fail or a terminal Write, from any goroutine), also
// when ctx is cancelled; the server frees the command's slot when it ends.
// ctx is the user's connection's (cancelled when the user goes or the
// server stops), not the command's own: it is not cancelled when the
// command ends, so whatever the handler hangs on it must be undone by the
// handler. A panic in TryStart fails the command.
type Starter interface {
	TryStart(ctx context.Context, cmd *Command) bool
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, cmd *Command)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, cmd *Command) { f(ctx, cmd) }

// Command is one command being run, with the methods to reply to it.
// Replies go to the user who sent it, tagged with its id; once the
// connection is gone they are dropped silently. The methods are safe for
// concurrent use, and a command gets exactly one terminal reply: anything
// written after it is dropped (and logged).
type Command struct {
	Line
	// UserID is the id of the user (connection) that sent the command; 0
	// for a command run by the actor itself with its replies broadcast.
	UserID int

	actor string
	// send gets reply lines, each ending in a newline, in a buffer it
	// must copy from before returning; final says the last one ends the
	// command.
	send func(lines []byte, final bool)
	log  logr.Logger

	mu       sync.Mutex
	final    Code
	finished chan struct{}

	batching   int    // Batch calls under way, and the start's hold
	batch      []byte // their lines
	batchFinal bool   // the batch ends the command
	held       bool   // the start's hold is on (see holdStart)
	onEnd      func() // called once the terminal reply has been sent
}

// NewCommand makes a Command outside a Server, for running a Handler
// elsewhere (tests, or routing replies somewhere else). Each reply is
// rendered as `<userID> <l.ID> <code> <keywords>` (no newline) and passed to
// send, in order; send must not block for long. NewCommand does not send the
// `>` reply; a nil send drops every reply. The command's failures name the
// actor DefaultActorName (see Failf).
func NewCommand(l Line, userID int, send func(line string)) *Command {
	var f func([]byte, bool)
	if send != nil {
		f = func(b []byte, _ bool) {
			for len(b) > 0 {
				i := bytes.IndexByte(b, '\n')
				send(string(b[:i]))
				b = b[i+1:]
			}
		}
	}
	return newCommand(l, userID, DefaultActorName, f, logr.Discard())
}

func newCommand(l Line, userID int, actor string, send func([]byte, bool), log logr.Logger) *Command {
	return &Command{
		Line:     l,
		UserID:   userID,
		actor:    actor,
		send:     send,
		log:      log,
		finished: make(chan struct{}),
	}
}

// ActorName returns the actor's name, which the command's own failures
// give as the source of their error (see Failf).
func (c *Command) ActorName() string { return c.actor }

// scratch buffers for rendering reply lines.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getScratch() *[]byte { return scratch.Get().(*[]byte) }

func putScratch(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		scratch.Put(b)
	}
}

// Write sends a reply with the given code. A terminal code (`:`, `f`, `!`)
// ends the command. Nothing is sent once the command has ended.
func (c *Command) Write(code Code, kws ...Keyword) {
	c.mu.Lock()
	c.writeLocked(code, kws)
	end := c.takeEndLocked()
	c.mu.Unlock()
	if end != nil {
		end()
	}
}

func (c *Command) writeLocked(code Code, kws []Keyword) {
	if c.final != 0 {
		if c.log.Enabled() {
			c.log.Info("reply after the command ended dropped", "user", c.UserID, "cmdID", c.ID,
				"verb", c.Verb, "code", code.String(), "keywords", EncodeKeywords(kws...))
		}
		return
	}
	if !code.Valid() {
		c.log.Info("invalid reply code sent as a warning", "user", c.UserID, "cmdID", c.ID,
			"code", fmt.Sprintf("%q", byte(code)))
		code = Warning
	}
	if code.Terminal() {
		c.final = code
		close(c.finished)
	}
	switch {
	case c.send == nil:
	case c.batching > 0:
		c.batch = append(AppendReply(c.batch, c.UserID, c.ID, code, kws...), '\n')
		c.batchFinal = code.Terminal()
		if c.batchFinal {
			c.unholdLocked() // the end is not held
		}
	default:
		b := getScratch()
		*b = append(AppendReply(*b, c.UserID, c.ID, code, kws...), '\n')
		c.send(*b, code.Terminal())
		putScratch(b)
	}
}

// holdStart holds the command's replies (its `>` first) for up to q's
// hold: a command that ends within it reaches its user in one write, `>`
// and end together, instead of two. The replies are sent as soon as the
// command ends, or when q lets the hold go.
func (c *Command) holdStart(q *holds) {
	c.mu.Lock()
	c.batching++
	c.held = true
	c.mu.Unlock()
	q.add(c)
}

// unhold ends the start's hold, if it still holds (see holds).
func (c *Command) unhold() {
	c.mu.Lock()
	c.unholdLocked()
	end := c.takeEndLocked()
	c.mu.Unlock()
	if end != nil {
		end()
	}
}

// unholdLocked ends the start's hold, if it still holds.
func (c *Command) unholdLocked() {
	if !c.held {
		return
	}
	c.held = false
	c.batching--
	c.flushLocked()
}

// flushLocked sends the batch once no Batch or hold remains.
func (c *Command) flushLocked() {
	if c.batching > 0 || len(c.batch) == 0 {
		return
	}
	if c.send != nil {
		c.send(c.batch, c.batchFinal)
	}
	c.batch, c.batchFinal = c.batch[:0], false
	if cap(c.batch) > 64<<10 {
		c.batch = nil
	}
}

// Batch runs f and sends the replies written meanwhile (by f or anyone
// else) together when it returns, in order: a reply relayed with the
// command's end reaches the user in one write.
func (c *Command) Batch(f func()) {
	c.mu.Lock()
	c.batching++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.batching--
		c.flushLocked()
		end := c.takeEndLocked()
		c.mu.Unlock()
		if end != nil {
			end()
		}
	}()
	f()
}

// takeEndLocked returns onEnd, once, when the command has ended and its
// terminal reply has been sent; nil otherwise.
func (c *Command) takeEndLocked() func() {
	if c.onEnd == nil || c.final == 0 || len(c.batch) > 0 {
		return nil
	}
	end := c.onEnd
	c.onEnd = nil
	return end
}

// Finish ends the command successfully (`:`).
func (c *Command) Finish(kws ...Keyword) { c.Write(Done, kws...) }

// Fail ends the command with a failure (`f`).
func (c *Command) Fail(kws ...Keyword) { c.Write(Failed, kws...) }

// ErrorKW returns the `error` keyword as the keyword dictionary defines
// it, two values: the source of the failure, then the message, always
// quoted: `error=<source>,"<message>"`. The source is the camera (node)
// the failure concerns, or the actor's own name for a failure that
// concerns no node. A one-value `error="..."` does not decode with the
// dictionary.
func ErrorKW(source, message string) Keyword {
	return Keyword{Name: "error", Values: []any{source, Quoted(message)}}
}

// Failf ends the command with a failure that concerns no node:
// `f error=<actor name>,"<message>"` (see ErrorKW; the actor's name is the
// server's WithActorName).
func (c *Command) Failf(format string, args ...any) {
	c.Fail(ErrorKW(c.actor, fmt.Sprintf(format, args...)))
}

// FailNode ends the command with a failure about one node (camera):
// `f error=<node>,"<message>"` (see ErrorKW).
func (c *Command) FailNode(node, format string, args ...any) {
	c.Fail(ErrorKW(node, fmt.Sprintf(format, args...)))
}

// Errorf writes a non-terminal error reply that concerns no node:
// `e error=<actor name>,"<message>"`.
func (c *Command) Errorf(format string, args ...any) {
	c.Write(Error, ErrorKW(c.actor, fmt.Sprintf(format, args...)))
}

// FailUnknown fails the command because its verb is not a known command:
// `f error=<actor name>,"Command \"<verb>\" not found."`.
func (c *Command) FailUnknown() {
	c.Failf("Command %q not found.", c.Verb)
}

// Done reports whether the command has had its terminal reply.
func (c *Command) Done() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final != 0
}

// Finished returns a channel closed when the command has had its terminal
// reply.
func (c *Command) Finished() <-chan struct{} { return c.finished }

// Status returns the terminal code the command ended with, or 0 while it is
// still running.
func (c *Command) Status() Code {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final
}
