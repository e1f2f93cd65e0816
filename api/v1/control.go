package v1

import "time"

// This file holds the types of the daemon's control socket
// (`fliswarm status` and `fliswarm reconcile` ask the running daemon
// through it), so that the CLI, the daemon and any other client share one
// definition.

// ActionType names what an action does.
type ActionType string

// The actions a plan may contain.
const (
	ActionPullImage         ActionType = "pull-image"
	ActionRemoveContainer   ActionType = "remove-container"
	ActionRemoveVolume      ActionType = "remove-volume"
	ActionCreateVolume      ActionType = "create-volume"
	ActionCreateContainer   ActionType = "create-container"
	ActionRecreateContainer ActionType = "recreate-container"
	ActionStartContainer    ActionType = "start-container"
	ActionUnpauseContainer  ActionType = "unpause-container"
	// ActionRecordHalt records on the node that the rollout of the spec
	// halted there, and why: a container that is never started, named
	// "<container>-halted", labelled with the halted spec and the reason.
	ActionRecordHalt ActionType = "record-halt"
	// ActionRestorePrevious puts back the container a rollout replaced
	// (kept stopped as "<container>-previous"): renamed and started.
	ActionRestorePrevious ActionType = "restore-previous"
)

// Action is one step of a node's plan.
type Action struct {
	Type ActionType `json:"type"`
	// Target is the container, volume or image the action is about.
	Target string `json:"target"`
	// ID is the container id for actions on an existing container.
	ID string `json:"id,omitempty"`
	// Reason says why, naming what differs.
	Reason string `json:"reason"`
	// Disruptive actions take a running camera down; a rollout limits how
	// many nodes run them at once.
	Disruptive bool `json:"disruptive,omitempty"`
}

func (a Action) String() string {
	return string(a.Type) + " " + a.Target + " (" + a.Reason + ")"
}

// DaemonStatus is the daemon's answer to GET /v1/status, and what
// `fliswarm status --json` prints.
type DaemonStatus struct {
	Daemon DaemonInfo   `json:"daemon"`
	Nodes  []NodeStatus `json:"nodes"`
}

// DaemonInfo describes the running daemon.
type DaemonInfo struct {
	Running   bool      `json:"running"`
	Pid       int       `json:"pid,omitempty"`
	Version   string    `json:"version,omitempty"`
	Config    string    `json:"config,omitempty"`
	Revision  string    `json:"revision,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// ConfigError is set when the configuration file was edited into
	// something invalid (or deleted); the daemon keeps the last good
	// revision.
	ConfigError string `json:"configError,omitempty"`
	ActorAddr   string `json:"actorAddr,omitempty"`
	// Hub is the state of the tron hub connections; nil when no hub is
	// configured.
	Hub *HubStatus `json:"hub,omitempty"`
	// HTTPAddr is where the status page and metrics are served, empty
	// when they are off.
	HTTPAddr string `json:"httpAddr,omitempty"`
}

// HubStatus is the state of fliswarm's two connections with the tron hub:
// its own client connection (for commanding other actors and asking tron
// to connect back with `hub startNubs`) and tron's connection to the
// actor port.
type HubStatus struct {
	// Addr is the hub's address (actor.tron_host:actor.tron_port).
	Addr string `json:"addr"`
	// Connected says whether fliswarm's connection to the hub is up.
	Connected bool `json:"connected"`
	// ConnectedSince is when that connection was made.
	ConnectedSince time.Time `json:"connectedSince,omitzero"`
	// NubsAccepted is when the hub last accepted `hub startNubs`.
	NubsAccepted time.Time `json:"nubsAccepted,omitzero"`
	// TronConnected says whether a connection from the hub's host is open
	// on the actor port now.
	TronConnected bool `json:"tronConnected"`
	// TronLastConnected is when a connection from the hub's host was last
	// accepted on the actor port (zero: never since fliswarm started).
	TronLastConnected time.Time `json:"tronLastConnected,omitzero"`
}

// ReconcileRequest is the body of POST /v1/reconcile.
type ReconcileRequest struct {
	// Nodes to converge; empty means every enabled node.
	Nodes []string `json:"nodes,omitempty"`
	// Force recreates volumes and containers even when current.
	Force bool `json:"force,omitempty"`
	// Timeout bounds the wait; the daemon answers with each node's last
	// state when it passes. Default 2 minutes.
	Timeout time.Duration `json:"timeout"`
}

// NodeResult is the outcome of converging one node on request.
type NodeResult struct {
	Node string `json:"node"`
	// Actions are every action taken for the request, over all attempts.
	Actions []Action `json:"actions"`
	// Attempts is how many reconciles ran for the request.
	Attempts int `json:"attempts"`
	// Error is why the node did not converge, "" when it did.
	Error  string     `json:"error,omitempty"`
	Status NodeStatus `json:"status"`
}

// Converged reports whether the node ended converged.
func (n NodeResult) Converged() bool { return n.Error == "" }

// EventsRequest selects the events GET /v1/events streams.
type EventsRequest struct {
	// Nodes whose events are wanted; none: every node's and fliswarm's
	// own. Each must be configured and enabled.
	Nodes []string
	// Since: events last seen at or after it; zero: all kept.
	Since time.Time
	// Follow: after the events kept, each new one until the client goes.
	Follow bool
}

// EventsLine is one line of GET /v1/events (JSON lines): an event, or an
// error that ends the stream (a follower that fell too far behind).
type EventsLine struct {
	Event
	Error string `json:"error,omitempty"`
}
