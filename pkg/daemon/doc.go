// Package daemon holds the process lifecycle of the fliswarm daemon: its
// run directory, the locked pid file that keeps a second daemon from
// starting, detaching into the background, and stopping a running daemon.
// It knows nothing of what the daemon does.
package daemon
