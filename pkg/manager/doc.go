// Package manager is the running fliswarm daemon: it wires the node
// reconciler, the actor bridge and the local control socket together,
// and reloads the configuration when its file changes (an invalid edit is
// reported and leaves everything running as it was).
package manager
