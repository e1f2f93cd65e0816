// Package actor is fliswarm's actor bridge: the opscore actor that tron and
// operators talk to (status, talk, reconnect, enable, disable, reboot,
// simulate, help, ping, version), one device client per enabled camera whose
// replies it relays upstream with the node's name prepended, and a client
// connection to the tron hub for commanding other actors (a hard reboot
// through the power actor).
//
// The package must not touch Docker or the nodes' containers: it asks the
// Reconciler (declared here, implemented by controllers.Reconciler) to
// converge, enable or disable nodes, and reads the node status the
// reconciler keeps. It must not hold a command open forever: every command
// ends with exactly one terminal reply, whatever the cameras, the hub or the
// nodes do.
package actor
