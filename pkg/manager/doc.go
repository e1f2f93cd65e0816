// Package manager is the running fliswarm daemon. It makes its parts in
// the order they depend on each other, each handed only parts made before
// it (the status store first, then the metrics, the camera clients, the
// node controller, the hub link, the actor and the status page), and runs
// every long-running part as a Runnable (a blocking Start(ctx) error, as
// controller-runtime's) under one errgroup: each part that binds a port or
// socket binds before the next starts, so that a port in use fails the
// start at once; the first part to fail stops the others, and stopping
// waits for all. It also reads the cameras' output (logs.go) for the
// control socket, the actor and the status page, through the controller's
// engine connections. It reloads the configuration when its file changes (an
// invalid edit is reported and leaves everything running as it was); the
// parts follow the new spec from the store.
//
// It may import every package of the product; none imports it but the
// CLI.
package manager
