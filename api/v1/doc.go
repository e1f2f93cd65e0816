// Package v1 holds fliswarm's desired state (the Swarm spec, built from the
// YAML configuration) and its observed status (one NodeStatus per node),
// with defaulting and validation beside the types.
//
// The types are plain data: this package performs no I/O and knows nothing
// about YAML layouts, Docker or sockets. pkg/config turns a file into a
// Swarm; controllers turn a Swarm into running containers and NodeStatus.
package v1
