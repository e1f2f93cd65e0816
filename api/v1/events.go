package v1

import "time"

// Event is one thing that happened to a node, as fliswarm recorded it
// when it happened (fliswarm events, the status page, /events): what the
// controller did (created, started, adopted, pulled, removed), what it
// saw (a camera that crashed, an engine that went down or came back, a
// camera connection made or lost) and what it decided (back off, halt a
// rollout, put the previous camera back). Events about fliswarm as a
// whole (a configuration accepted or rejected, a new image under the
// tag) have no Node.
//
// The same event repeated with nothing between it and the last one (a
// crash loop) is one Event whose Count grows and LastTime moves, as in
// Kubernetes.
type Event struct {
	// Time is when it first happened; LastTime when it last did (equal
	// unless Count > 1).
	Time     time.Time `json:"time"`
	LastTime time.Time `json:"lastTime"`
	Count    int       `json:"count"`
	// Node is the node's name, "" for fliswarm as a whole.
	Node string `json:"node,omitempty"`
	// Type is EventNormal or EventWarning.
	Type string `json:"type"`
	// Reason is one word (CamelCase) saying what happened: one of the
	// Reason constants.
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event reasons.
const (
	ReasonPulled          = "Pulled"          // an image was pulled (message: its ID and digest)
	ReasonVolumeCreated   = "VolumeCreated"   // a volume was created
	ReasonVolumeRemoved   = "VolumeRemoved"   // a volume was removed to be recreated
	ReasonCreated         = "Created"         // a camera container was created
	ReasonStarted         = "Started"         // a camera container was started
	ReasonStopped         = "Stopped"         // a camera container was stopped by fliswarm
	ReasonRemoved         = "Removed"         // a container was removed by fliswarm
	ReasonRenamed         = "Renamed"         // a container was renamed (kept as history)
	ReasonUnpaused        = "Unpaused"        // a paused camera was unpaused
	ReasonAdopted         = "Adopted"         // a camera started by hand (or the original) was adopted
	ReasonFailed          = "Failed"          // an action failed (message: which, and why)
	ReasonCrashed         = "Crashed"         // the camera's container stopped by itself (message: exit code)
	ReasonBackOff         = "BackOff"         // a camera that keeps stopping is restarted later
	ReasonReady           = "Ready"           // a camera fliswarm started answers
	ReasonStartFailed     = "StartFailed"     // a camera fliswarm started did not answer
	ReasonUpdatePending   = "UpdatePending"   // a change waits for the camera to finish an exposure
	ReasonRolloutStarted  = "RolloutStarted"  // the node's camera is being replaced under a new revision
	ReasonRolloutHalted   = "RolloutHalted"   // the rollout stopped on this node (message: why)
	ReasonRolloutResumed  = "RolloutResumed"  // a rollout a restart of fliswarm interrupted goes on
	ReasonRolledBack      = "RolledBack"      // the camera the node ran before is back
	ReasonEngineDown      = "EngineDown"      // the node's engine stopped answering
	ReasonEngineUp        = "EngineUp"        // the node's engine answers again
	ReasonUnreachable     = "Unreachable"     // the node stopped answering ping
	ReasonReachable       = "Reachable"       // the node answers ping again
	ReasonCameraConnected = "CameraConnected" // fliswarm's client of the camera connected
	ReasonCameraLost      = "CameraLost"      // fliswarm's client of the camera lost it
	ReasonImageRemoved    = "ImageRemoved"    // an old image of the camera was removed from the node
	ReasonDiskNearlyFull  = "DiskNearlyFull"  // the engine's data root is fuller than image_gc.high_percent
	ReasonConfigAccepted  = "ConfigAccepted"  // a configuration was loaded and is in force
	ReasonConfigRejected  = "ConfigRejected"  // a configuration edit was refused; the last good one stays
	ReasonImageUpdated    = "ImageUpdated"    // the image's tag names a new image in the registry
)
