// Package testbed connects end-to-end tests to fliswarm's test bed: real
// Docker Engines running as separate "node computers" in network namespaces
// on this machine, a local registry holding the flicamera-sim image, and the
// fliswarm configuration that points at them. The bed itself is built and
// driven by hack/testbed; this package only calls that script.
//
// Every e2e test starts with Ensure, which skips the test unless
// FLISWARM_E2E=1 (set by `make e2e`), brings the bed up when it is not
// healthy, and describes it as a Bed: nodes, addresses, config path, data
// directory, registry and images. Bed's methods inject the faults the bed
// can cause (partition, engine crash, container crash, registry outage) and
// register a cleanup that undoes them, so a failing test never leaves the
// bed broken for the next one. Bed.Docker runs the docker CLI on a node's
// console (its unix socket), which works even while the node is partitioned.
//
// Tests using the bed change shared machine state: run e2e packages one at a
// time (go test -p 1) and do not call t.Parallel in tests that inject faults.
//
// This package must not decide what fliswarm does, talk to engines on the
// tests' behalf beyond the docker CLI helper, or contain assertions about
// fliswarm itself; it is test infrastructure only.
package testbed
