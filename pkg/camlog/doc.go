// Package camlog reads a camera container's output on its node's engine,
// for `fliswarm logs`, the actor's logs command and the status page.
//
// It decides which container a request shows: the node's camera
// container, or with Previous the instance that ran before it, which is
// whichever ended last of the camera container's own earlier run (fliswarm
// restarts a crashed camera in place, so that run's lines are the
// container's lines from before its current start) and the
// "<container>-previous" container a rollout keeps stopped. Instance says
// which one was picked, in words an operator reads.
//
// What it must not do: change anything on the node. It only inspects
// containers and reads their logs, through the small Engine interface
// (*engine.Client satisfies it).
package camlog
