// Package render turns the desired state of api/v1 into exactly what is
// asked of a node's Docker Engine: the container's create options and the
// volumes' create options, each with a stable hash of the rendered spec.
//
// It is pure: no I/O, no clock, no randomness. The same spec always
// renders the same value and hash, so the hash, stored as a label on the
// container, tells the reconciler whether a running container is current.
package render
