package opscore

import (
	"time"

	"github.com/go-logr/logr"
)

// Defaults of the server options.
const (
	DefaultMaxLineLength = 64 << 10
	DefaultMaxBacklog    = 64 << 20
	DefaultStallTimeout  = 60 * time.Second
	DefaultMaxCommands   = 256
	DefaultVersion       = "unknown"
	DefaultActorName     = "fliswarm"
)

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger (default logr.Discard()).
func WithLogger(log logr.Logger) Option { return func(s *Server) { s.log = log } }

// WithVersion sets the version told to every new user (default "unknown").
func WithVersion(version string) Option { return func(s *Server) { s.version = version } }

// WithActorName sets the actor's name (default "fliswarm"): the first value
// of every `error` keyword the server and Command.Failf write for a failure
// that concerns no node (see ErrorKW).
func WithActorName(name string) Option {
	return func(s *Server) {
		if name != "" {
			s.actor = name
		}
	}
}

// WithMaxLineLength sets the longest command line accepted, in bytes
// without the newline (default 64 KiB). A longer line is discarded and
// answered with a failure.
func WithMaxLineLength(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxLine = n
		}
	}
}

// WithMaxBacklog sets how many bytes of replies may wait to be written to
// one user (default 64 MiB). A user whose backlog would grow beyond it is
// disconnected. Replies are never dropped otherwise: a user that reads
// slowly gets every line, in order, however long it takes.
func WithMaxBacklog(bytes int) Option {
	return func(s *Server) {
		if bytes > 0 {
			s.maxBacklog = bytes
		}
	}
}

// WithStallTimeout sets how long a user with replies waiting may go without
// any write progress (its connection accepts not one byte) before it is
// disconnected (default 60 s).
func WithStallTimeout(d time.Duration) Option {
	return func(s *Server) {
		if d > 0 {
			s.stall = d
		}
	}
}

// DefaultStartHold is how long a command's `>` is held back by default
// (see WithStartHold).
const DefaultStartHold = 2 * time.Millisecond

// WithStartHold holds a command's `>` back for up to d, so that a command
// that ends within d reaches its user in one write (its `>`, any replies
// and its end) rather than one for the `>` and another for the rest; the
// order of the replies is unchanged, and a longer command's `>` is only d
// to 1.5d late (one timer serves every command, see holds). 0 sends every
// `>` at once. Default DefaultStartHold.
func WithStartHold(d time.Duration) Option { return func(s *Server) { s.holdStart = max(d, 0) } }

// WithMaxCommands sets how many commands of one user may run at once
// (default 256); a command beyond that fails at once.
func WithMaxCommands(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.maxCmds = n
		}
	}
}
