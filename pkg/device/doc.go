// Package device is fliswarm's client for one flicamera camera actor: it
// keeps a TCP connection to the actor's CLU JSON-protocol port, sends
// commands with per-connection command ids, routes every reply to the
// command that caused it (or to an unsolicited-message callback), and ends
// each command exactly once: at its terminal reply, at its timeout, when the
// caller's context ends, or when the connection drops.
//
// Relay (relay.go) is the pure translation of a device reply into the
// opscore reply lines fliswarm writes upstream, with the node name
// prepended to every keyword and the device's lifecycle codes softened.
//
// The package must not know about Docker, containers or nodes' health, nor
// about the opscore server (users, command ids upstream, how lines are
// written): the reconciler decides when a camera should be reachable and
// tells the Client (Kick, Pause, Resume); the actor bridge decides where a
// relayed line goes.
package device
