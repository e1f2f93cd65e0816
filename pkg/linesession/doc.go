// Package linesession is the client side of fliswarm's line protocols,
// shared by the camera client (pkg/device, CLU JSON), the tron hub client
// (pkg/actor) and the opscore user client (pkg/opscore): numbered commands
// written one per line, reply lines routed to the command whose id they
// carry, and exactly one outcome per command — its terminal reply, its
// timeout, its caller giving up, or the connection ending (every command in
// flight then ends with ErrClosed). Replies with no command in flight go to
// an unsolicited callback; replies to a command its caller gave up on are
// discarded and counted (its id stays reserved until the peer ends it, so
// a late reply is never taken for a newer command's).
//
// Session is one connection; Keeper keeps one up, redialling with
// exponential backoff (github.com/cenkalti/backoff/v5), and can be kicked
// to dial at once or paused.
//
// The package knows no protocol: a Config's Decode says what a line's
// command id is and whether it ends the command, and the caller formats
// its own command lines.
//
// Files: session.go (a connection and starting commands), reader.go
// (reading lines and routing them), call.go (one command in flight and its
// one outcome), keeper.go (redialling). It imports nothing of fliswarm.
package linesession
