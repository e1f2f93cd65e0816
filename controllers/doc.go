// Package controllers holds the node reconciler: for each enabled node it
// observes the node (ping, engine, volumes, image, containers), plans the
// actions that converge it to the rendered spec (plan.go, pure), executes
// them, and records the node's status. Events from each engine and a
// periodic resync only enqueue a node; every reconcile observes afresh.
//
// Nothing else in fliswarm creates, starts or removes containers or
// volumes: the actor asks the reconciler (Converge) instead.
package controllers
