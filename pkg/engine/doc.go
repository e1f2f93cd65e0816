// Package engine is fliswarm's access to the Docker Engine of one node
// computer, through the Docker Go SDK (github.com/moby/moby/client).
//
// A Client is bound to one node (its name is in every error and log line)
// and one engine address (tcp://host:port or unix:///path). It offers the
// handful of operations the node reconciler needs: ping, list/inspect/
// create/start/stop/remove containers, inspect/pull/list/remove images
// (removal never forced), the engine's disk use (its /system/df, and df
// run in a container for the data root's filesystem), ask the registry
// (through the engine) which digest a tag names, inspect/create/
// remove volumes, a stream of container, volume and image events, and a
// container's output (StreamLogs: tail, since, until, follow; stdout and
// stderr separated by the SDK's stdcopy, one timestamped line each). Every
// call runs under a per-call timeout derived from the caller's context; the
// API version is negotiated with the engine on first contact (the engines at
// the observatory are Debian's dockerd 20.10, API 1.41).
//
// Errors are wrapped as "<node>: <operation>: <cause>" and keep their cause:
// IsNotFound and IsUnreachable classify them by type (containerd errdefs and
// the SDK's own connection-failure type, net and syscall errors), never by
// matching message text.
//
// What it must not do: decide anything. It holds no desired state, never
// retries, never removes or recreates on its own initiative and never
// renders container configuration; that is the reconciler's and the
// renderer's job. It caches nothing but the negotiated API version.
//
// Tests that need a real engine use the one at FLISWARM_TEST_DOCKER_HOST and
// are skipped when that variable is unset (see engine_test.go).
package engine
