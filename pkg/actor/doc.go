// Package actor is fliswarm's actor bridge: the opscore actor that tron and
// operators talk to (status, talk, reconnect, enable, disable, reboot,
// simulate, help, ping, version), one device client per enabled camera whose
// replies it relays upstream with the node's name prepended, and a client
// connection to the tron hub for commanding other actors (a hard reboot
// through the power actor).
//
// Replies follow the original Python fliswarm (sdss/fliswarm commands.py,
// node.py) and CLU: the status warnings' wording and order, "Failed
// connecting to X." in talk, the periodic status run as a whole command
// broadcast to every user (`0 0 >` ... `0 0 :`, like CLU's timed
// commands), simulate as a cancellable command, help lines as warnings.
// Where the original could hang or hide a failure, this package ends the
// command: talk fails when no camera finished the command successfully, and
// reconnect and reboot fail naming the nodes that did not come back.
//
// The package must not touch Docker or the nodes' containers: it asks the
// Reconciler (declared here, implemented by controllers.Reconciler) to
// converge, enable or disable nodes, and reads the node status the
// reconciler keeps. It must not hold a command open forever: every command
// ends with exactly one terminal reply, whatever the cameras, the hub or the
// nodes do.
package actor
