// Package device is fliswarm's client for one flicamera camera actor: it
// keeps a TCP connection to the actor's CLU JSON-protocol port, sends
// commands with per-connection command ids, routes every reply to the
// command that caused it (or to an unsolicited-message callback), and ends
// each command exactly once: at its terminal reply, at its timeout, when the
// caller's context ends, or when the connection drops. The line session
// itself (ids, routing, reconnecting with backoff) is pkg/linesession's.
//
// A connection counts only once verified: the camera must answer a `ping`
// as the actor named like the node (a stray process on the port is not
// believed). An idle connection is pinged, and dropped when the camera
// stops answering, so a camera that vanished is seen within seconds. Replies
// to a command its caller gave up on are discarded and counted, never
// passed on as unsolicited; a line that cannot be decoded is passed on as a
// warning carrying its text, never dropped silently.
//
// Send waits for the command's end; SendAsync, for a caller that must not
// wait (the reading goroutine of the user who sent the command), sends
// without waiting and hands the outcome to a callback on the goroutine that
// ends the command, so that a relayed command needs no goroutine of its
// own.
//
// Files: client.go (the Client and its controls: Kick, Started, Pause,
// Resume, Disconnect), options.go, errors.go, connection.go (dial, the
// verifying handshake, pings, the sender check), send.go (commands),
// decode.go (camera lines to replies; undecodable ones logged through
// pkg/internal/loglimit). It imports pkg/clu, pkg/linesession and
// pkg/internal.
//
// The package must not know about Docker, containers or nodes' health, nor
// about the opscore protocol (users, command ids upstream, how lines are
// written, how replies are relayed): the reconciler decides when a camera
// should be reachable and tells the Client (Kick, Pause, Resume); the actor
// bridge translates and routes what the camera says.
package device
