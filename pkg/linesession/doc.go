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
// A caller that must not wait (the reading goroutine of another
// connection relaying a command) uses TryStart and WhenDone instead of
// Start and Wait: the command line goes to the socket without waiting
// (ErrBusy while another line is being written; what the socket does not
// take at once is finished by a goroutine), and the call's one outcome is
// handed to a callback on whichever goroutine ends it. Every command line is
// first written without waiting and without arming a write deadline, which
// only a line the socket cannot take at once needs.
//
// The package knows no protocol: a Config's Decode says what a line's
// command id is and whether it ends the command, and the caller formats
// its own command lines.
//
// Files: session.go (a connection and starting commands), rawwrite*.go
// (writing to a socket without waiting), reader.go (reading lines and
// routing them), call.go (one command in flight and its one outcome),
// keeper.go (redialling). It imports nothing of fliswarm.
package linesession
