package opscore

import (
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

	send func(line []byte)
	log  logr.Logger

	mu       sync.Mutex
	final    Code
	finished chan struct{}
}

// NewCommand makes a Command outside a Server, for running a Handler
// elsewhere (tests, or routing replies somewhere else). Each reply is
// rendered as `<userID> <l.ID> <code> <keywords>` (no newline) and passed to
// send, in order; send must not block for long. NewCommand does not send the
// `>` reply; a nil send drops every reply.
func NewCommand(l Line, userID int, send func(line string)) *Command {
	var f func([]byte)
	if send != nil {
		f = func(b []byte) { send(string(b)) }
	}
	return newCommand(l, userID, f, logr.Discard())
}

func newCommand(l Line, userID int, send func([]byte), log logr.Logger) *Command {
	return &Command{
		Line:     l,
		UserID:   userID,
		send:     send,
		log:      log,
		finished: make(chan struct{}),
	}
}

// Write sends a reply with the given code. A terminal code (`:`, `f`, `!`)
// ends the command. Nothing is sent once the command has ended.
func (c *Command) Write(code Code, kws ...Keyword) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	if c.send != nil {
		c.send(AppendReply(nil, c.UserID, c.ID, code, kws...))
	}
}

// Finish ends the command successfully (`:`).
func (c *Command) Finish(kws ...Keyword) { c.Write(Done, kws...) }

// Fail ends the command with a failure (`f`).
func (c *Command) Fail(kws ...Keyword) { c.Write(Failed, kws...) }

// Failf ends the command with a failure carrying `error=<message>`.
func (c *Command) Failf(format string, args ...any) {
	c.Fail(KW("error", fmt.Sprintf(format, args...)))
}

// FailUnknown fails the command because its verb is not a known command.
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
