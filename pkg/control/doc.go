// Package control is the daemon's local control API: HTTP with JSON over
// a unix socket in the run directory, used by `fliswarm status` and
// `fliswarm reconcile` to reach a running daemon, and by `fliswarm logs`
// for the cameras' output (GET /v1/logs, newline-delimited JSON, one
// record per line, flushed as it comes). It is not for the network: only
// local users with access to the socket can use it.
package control
