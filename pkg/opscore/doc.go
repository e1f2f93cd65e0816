// Package opscore implements the SDSS opscore ("legacy") actor line
// protocol, the one the tron hub speaks: parsing command lines, encoding
// keyword replies, and a TCP server that assigns user ids, greets users,
// routes replies to the connection that sent a command and broadcasts to
// all. It knows nothing about cameras or Docker; commands are handed to a
// Handler.
//
// Every failure the server and the command framework write uses the
// keyword dictionary's two-valued `error` keyword, `error=<source>,"<message>"`
// (see ErrorKW): the source is the actor's name (WithActorName) for a
// failure that concerns no node (Command.Failf, FailUnknown, bad lines) and
// the node's name otherwise (Command.FailNode).
//
// The encoder never writes what opscore parsers reject: keyword names are
// sanitized and the reserved name raw is replaced (see SafeName), the
// non-finite floats are written nan, inf and -inf, and values are quoted
// as needed.
//
// A Handler that is also a Starter can start commands on the user's
// reading goroutine instead of one of their own; such a command is ended
// from wherever its terminal reply is written (a relayed device's reader)
// and holds its slot until then.
//
// Each user's replies wait in a backlog bounded in bytes (WithMaxBacklog)
// and are written in batches by the user's own goroutine, so that a slow
// reader gets everything in order and never holds up anyone else; a user
// that makes no write progress for WithStallTimeout is dropped. Problems
// with users' input are logged at a bounded rate.
//
// Files, one job each: parse.go, encode.go, names.go, quote.go (the line
// format: command lines in, keyword replies out); reply.go, keyword.go,
// command.go (a command's replies and its one end); holds.go (the start
// holds, on one timer); server.go (listen and the accept loop, retried with
// cenkalti/backoff); options.go; admission.go (who may connect); users.go
// (user ids, the greeting, routing to one user or all); conn.go (one
// connection's life); reader.go (command lines in, problems logged through
// pkg/internal/loglimit); dispatch.go (running a command through the
// Handler); outbox.go and rawwrite*.go (the bounded backlog and its writer);
// client.go and exchange.go (the user side, for the CLI and tests). It may
// import pkg/linesession and pkg/internal only.
package opscore
