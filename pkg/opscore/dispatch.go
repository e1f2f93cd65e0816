package opscore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func (c *conn) handleLine(raw string) {
	s := c.srv
	l, err := ParseLine(raw)
	if errors.Is(err, ErrEmptyLine) {
		return
	}
	if n := len(strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")); err == nil && n > s.maxLine {
		err = &ParseError{Reason: fmt.Sprintf("command line longer than %d bytes", s.maxLine)}
	}
	if err != nil {
		reason := err.Error()
		var pe *ParseError
		if errors.As(err, &pe) {
			reason = pe.Reason
		}
		c.logBad("bad command line", "user", c.id, "cmdID", l.ID, "reason", reason)
		c.reply(c.id, l.ID, Failed, ErrorKW(s.actor, reason))
		return
	}
	if c.inflight.Load() >= int64(s.maxCmds) {
		c.logBad("too many commands running", "user", c.id, "cmdID", l.ID, "verb", l.Verb)
		c.reply(c.id, l.ID, Failed,
			ErrorKW(s.actor, fmt.Sprintf("too many commands running (at most %d)", s.maxCmds)))
		return
	}
	if s.log.V(1).Enabled() {
		s.log.V(1).Info("command", "user", c.id, "cmdID", l.ID, "commander", l.Commander, "body", l.Raw)
	}

	cmd := newCommand(l, c.id, s.actor, c.enqueue, s.log)
	c.inflight.Add(1)
	c.cmds.Add(1)
	s.wg.Add(1)
	release := func() {
		c.inflight.Add(-1)
		c.cmds.Done()
		s.wg.Done()
	}
	begun := false
	if st, ok := s.handler.(Starter); ok {
		// A command the handler can start without waiting runs with no
		// goroutine of its own: it ends (and release runs) when its
		// terminal reply has been sent, from wherever it is written. Its
		// context is the connection's: a context of its own, cancelled at
		// its end, would set off what the handler hung on it.
		cmd.mu.Lock()
		cmd.onEnd = release
		cmd.mu.Unlock()
		s.begin(cmd)
		begun = true
		if s.tryStart(c.ctx, cmd, st) {
			return
		}
		cmd.mu.Lock()
		ended := cmd.onEnd == nil // declined, yet ended: release has run
		cmd.onEnd = nil
		cmd.mu.Unlock()
		if ended {
			s.log.Info("command ended by a handler that declined to start it", "user", c.id, "cmdID", l.ID, "verb", l.Verb)
			return
		}
	}
	ctx, cancel := context.WithCancel(c.ctx)
	go func() {
		defer release()
		defer cancel()
		s.run(ctx, cmd, begun)
	}()
}

// tryStart lets the Starter start cmd; a panic fails the command.
func (s *Server) tryStart(ctx context.Context, cmd *Command, st Starter) (started bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "command handler panicked",
				"user", cmd.UserID, "cmdID", cmd.ID, "verb", cmd.Verb)
			cmd.Failf("Command %q failed: internal error: %v", cmd.Verb, r)
			started = true
		}
	}()
	return st.TryStart(ctx, cmd)
}

// begin sends the command's `>` (held back, see WithStartHold).
func (s *Server) begin(cmd *Command) {
	if s.holds != nil {
		cmd.holdStart(s.holds)
	}
	cmd.Write(Running)
}

// RunBroadcast runs body (a command body, without commander or id) through
// the Handler as the actor's own command, with every reply broadcast (uid
// 0, cmdId 0), and returns when it has ended. It is for periodic commands
// such as a status every few minutes. It fails only for a body that cannot
// be parsed.
func (s *Server) RunBroadcast(ctx context.Context, body string) error {
	words, err := SplitWords(body)
	if err != nil {
		return err
	}
	if len(words) == 0 || words[0] == "" {
		return &ParseError{Reason: "no command given"}
	}
	l := Line{Verb: words[0], Args: words[1:], Raw: trimBlanks(body)}
	cmd := newCommand(l, 0, s.actor, func(b []byte, _ bool) { s.broadcastLine(b) }, s.log)
	s.run(ctx, cmd, false)
	return nil
}

// run sends the command's `>` (unless begun: sent already), runs the
// handler and makes sure the command ends, whatever the handler does.
func (s *Server) run(ctx context.Context, cmd *Command, begun bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "command handler panicked",
				"user", cmd.UserID, "cmdID", cmd.ID, "verb", cmd.Verb)
			cmd.Failf("Command %q failed: internal error: %v", cmd.Verb, r)
		}
		if !cmd.Done() {
			s.log.Info("command ended without a reply", "user", cmd.UserID, "cmdID", cmd.ID, "verb", cmd.Verb)
			cmd.Failf("command ended without a reply")
		}
	}()
	if !begun {
		s.begin(cmd)
	}
	s.handler.Handle(ctx, cmd)
}
