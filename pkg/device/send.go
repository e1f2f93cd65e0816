package device

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/linesession"
)

// Result is how a camera finished a command.
type Result struct {
	// ID is the command id the command had on the wire.
	ID int
	// Code is the terminal message code: clu.CodeDone, clu.CodeFailed or
	// clu.CodeFatal.
	Code string
	// Final is the terminal reply itself (it was also given to onReply).
	Final clu.Reply
}

// OK reports whether the camera finished the command successfully.
func (r Result) OK() bool { return r.Code == clu.CodeDone }

// formatCommand returns the line formatter of a command.
func formatCommand(command string) func(dst []byte, id int) []byte {
	return func(dst []byte, id int) []byte {
		dst = strconv.AppendInt(dst, int64(id), 10)
		dst = append(dst, ' ')
		dst = append(dst, command...)
		return append(dst, '\n')
	}
}

// Send sends command to the camera and waits until the camera finishes it.
// It is SendWithTimeout with the client's CommandTimeout.
func (c *Client) Send(ctx context.Context, command string, onReply func(clu.Reply)) (Result, error) {
	return c.SendWithTimeout(ctx, command, c.opts.CommandTimeout, onReply)
}

// SendWithTimeout sends command to the camera as "<id> <command>", with id
// the smallest positive command id not in flight on this connection, and
// waits until the command ends.
//
// Every reply carrying the id, the terminal one included, is given to
// onReply (which may be nil) in arrival order, from SendWithTimeout's own
// goroutine: a slow onReply delays only this command, never the
// connection's reader (with Options.InlineReplies, from the reader
// instead). SendWithTimeout returns only after its last onReply call has
// returned, and every reply received before the command ended is delivered.
//
// It returns the Result with a nil error when the camera sends a terminal
// code (also for a failure, `f` or `!`: see Result.Code). It returns an
// error naming the camera and the command when there is no connection
// (ErrNotConnected, at once), when the connection drops (ErrDisconnected),
// when timeout passes (ErrTimeout; timeout <= 0 means none) or when ctx
// ends (ctx.Err()).
//
// When the timeout fires or ctx ends, the camera may still be running the
// command, so its id stays reserved until the camera's terminal reply for
// it arrives or the connection drops; replies arriving meanwhile are
// discarded (and counted, see Discarded), never taken for unsolicited
// ones nor for a newer command's.
func (c *Client) SendWithTimeout(ctx context.Context, command string, timeout time.Duration, onReply func(clu.Reply)) (Result, error) {
	command = strings.TrimSpace(command)
	if err := c.checkCommand(ctx, command); err != nil {
		return Result{}, err
	}
	s, err := c.session(command)
	if err != nil {
		return Result{}, err
	}
	call, err := s.Start(ctx, formatCommand(command), onReply)
	if err != nil {
		return Result{}, c.startError(command, err)
	}
	c.logSent(call.ID, command)
	final, err := call.Wait(ctx, timeout)
	return c.outcome(command, call.ID, final, err)
}

// SendAsync is SendWithTimeout for a caller that must not wait, such as the
// reading goroutine of the user who sent the command: it sends command
// without waiting and returns, and done gets the outcome (the Result and
// error SendWithTimeout would return) once, when the command ends, after
// the last onReply call. onReply and done run on the connection's reader
// at the command's replies and its end, or on a timer or a goroutine of
// ctx's when the command is given up on (see linesession.Call.WhenDone),
// so they must be quick; done may run before SendAsync returns. It needs
// Options.InlineReplies.
//
// It returns linesession.ErrBusy, with nothing sent, while another command
// line is being written to the camera (SendWithTimeout would wait for it),
// and the errors SendWithTimeout returns before anything is sent. done is
// called only when the error is nil.
func (c *Client) SendAsync(ctx context.Context, command string, timeout time.Duration, onReply func(clu.Reply), done func(Result, error)) error {
	if !c.opts.InlineReplies {
		return fmt.Errorf("camera %s: SendAsync needs InlineReplies", c.name)
	}
	command = strings.TrimSpace(command)
	if err := c.checkCommand(ctx, command); err != nil {
		return err
	}
	s, err := c.session(command)
	if err != nil {
		return err
	}
	call, err := s.TryStart(ctx, formatCommand(command), onReply)
	if errors.Is(err, linesession.ErrBusy) {
		return err
	}
	if err != nil {
		return c.startError(command, err)
	}
	c.logSent(call.ID, command)
	id := call.ID
	call.WhenDone(ctx, timeout, func(final clu.Reply, err error) {
		done(c.outcome(command, id, final, err))
	})
	return nil
}

// checkCommand vets a command (trimmed) before it is sent.
func (c *Client) checkCommand(ctx context.Context, command string) error {
	if command == "" {
		return fmt.Errorf("camera %s: empty command", c.name)
	}
	if strings.ContainsAny(command, "\r\n") {
		return fmt.Errorf("camera %s: command %q contains a line break", c.name, command)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("camera %s: command %q: %w", c.name, command, err)
	}
	return nil
}

// session returns the verified connection to send command on.
func (c *Client) session(command string) (*session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil || c.keeper.Paused() {
		return nil, fmt.Errorf("camera %s: cannot send %q: %w", c.name, command, ErrNotConnected)
	}
	return s, nil
}

// startError is the error of a command that could not be sent.
func (c *Client) startError(command string, err error) error {
	if errors.Is(err, linesession.ErrClosed) {
		return fmt.Errorf("camera %s: cannot send %q: %w: %w", c.name, command, ErrNotConnected, err)
	}
	return fmt.Errorf("camera %s: sending %q: %w", c.name, command, err)
}

func (c *Client) logSent(id int, command string) {
	if c.log.V(1).Enabled() {
		c.log.V(1).Info("sent command", "id", id, "command", command)
	}
}

// outcome is how a command that was sent ended.
func (c *Client) outcome(command string, id int, final clu.Reply, err error) (Result, error) {
	switch {
	case err == nil:
		return Result{ID: id, Code: final.Header.MessageCode, Final: final}, nil
	case errors.Is(err, linesession.ErrClosed):
		return Result{}, fmt.Errorf("camera %s disconnected while running %q: %w: %w", c.name, command, ErrDisconnected, err)
	default:
		return Result{}, fmt.Errorf("camera %s: command %q: %w", c.name, command, err)
	}
}
