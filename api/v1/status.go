package v1

import "time"

// Condition types reported for each node. Each answers one question about
// the node, with True meaning healthy.
const (
	// ConditionReachable: the node answers ping.
	ConditionReachable = "Reachable"
	// ConditionEngineReady: the node's Docker Engine answers /_ping.
	ConditionEngineReady = "EngineReady"
	// ConditionVolumesReady: every configured volume exists as specified.
	ConditionVolumesReady = "VolumesReady"
	// ConditionImageReady: the node has the image the spec asks for.
	ConditionImageReady = "ImageReady"
	// ConditionContainerRunning: exactly one managed container runs, with
	// the current spec.
	ConditionContainerRunning = "ContainerRunning"
	// ConditionDeviceConnected: the camera actor answers on its port.
	ConditionDeviceConnected = "DeviceConnected"
	// ConditionConverged: the last reconcile left nothing to do.
	ConditionConverged = "Converged"
)

// Reasons a node is not ready, in the order the readiness rule checks
// them; Phase holds one of these, or PhaseReady.
const (
	PhaseReady               = "Ready"
	PhaseDisabled            = "Disabled"
	PhaseUnreachable         = "Unreachable"
	PhaseEngineDown          = "EngineDown"
	PhaseRolloutHalted       = "RolloutHalted"
	PhaseCrashLoopBackOff    = "CrashLoopBackOff"
	PhaseImagePullFailed     = "ImagePullFailed"
	PhaseNoContainer         = "NoContainer"
	PhaseContainerNotRunning = "ContainerNotRunning"
	PhasePaused              = "Paused"
	PhaseStarting            = "Starting"
	PhaseUpdatePending       = "UpdatePending"
	PhaseCameraNotConnected  = "CameraNotConnected"
	PhaseNotObserved         = "NotObserved"
)

// Condition is one observed fact about a node, with why it holds and
// since when.
type Condition struct {
	Type   string `json:"type"`
	Status bool   `json:"status"`
	// Reason is a CamelCase word for machines ("EngineUnreachable").
	Reason string `json:"reason,omitempty"`
	// Message is for people.
	Message string `json:"message,omitempty"`
	// LastTransitionTime is when Status last changed.
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// NodeStatus is the observed state of one node.
type NodeStatus struct {
	Name       string `json:"name"`
	Enabled    bool   `json:"enabled"`
	Host       string `json:"host"`
	DockerHost string `json:"dockerHost"`
	// Reachable: the node answered ping. DockerAlive: its engine answered.
	Reachable   bool `json:"reachable"`
	DockerAlive bool `json:"dockerAlive"`
	// Volumes as found on the node.
	Volumes []VolumeStatus `json:"volumes,omitempty"`
	// Image is the reference wanted and the ID found on the node.
	Image ImageStatus `json:"image"`
	// Container is the managed container found, nil when none.
	Container *ContainerStatus `json:"container,omitempty"`
	// DeviceConnected: fliswarm's client is connected to the camera actor.
	DeviceConnected bool `json:"deviceConnected"`
	// Conditions, one per condition type.
	Conditions []Condition `json:"conditions,omitempty"`
	// Warnings are problems that do not stop the node from working, such
	// as an engine reached over plain TCP (see SetEngineSecurity).
	Warnings []string `json:"warnings,omitempty"`
	// LastError is the last reconcile error, empty after a success.
	LastError string `json:"lastError,omitempty"`
	// LastActions are the actions of the last reconcile that did something.
	LastActions []string `json:"lastActions,omitempty"`
	// ObservedRevision is the config revision the status reflects, with
	// "@sha256:<12 hex>" appended when image_update_interval pins the
	// image's digest.
	ObservedRevision string `json:"observedRevision,omitempty"`
	// ObservedAt is when the node was last observed.
	ObservedAt time.Time `json:"observedAt"`

	// Phase is PhaseReady when the node is usable: it pings, its engine
	// answers, its container runs the current spec (not paused, not
	// restarting) and its camera is connected. Otherwise it is the first
	// reason that fails, and Message says it for people.
	Phase   string `json:"phase"`
	Message string `json:"message,omitempty"`
	// CameraMessage says why the camera is not connected, when known
	// (for example another actor answering on the camera's port).
	CameraMessage string `json:"cameraMessage,omitempty"`
	// Restarts counts the camera restarts fliswarm itself made on this
	// node since the daemon started (Docker's own count is in
	// Container.RestartCount).
	Restarts int `json:"restarts"`
	// CrashLoop is set while the camera keeps stopping soon after each
	// start and restarts are backed off.
	CrashLoop *CrashLoopStatus `json:"crashLoop,omitempty"`
	// Rollout is set while a change that recreates cameras is pending,
	// running or halted on this node.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
	// Pull is the progress of an image pull under way.
	Pull *PullProgress `json:"pull,omitempty"`
	// Disk is the node's engine disk use as last checked (every few
	// minutes, and after each image garbage collection); nil before the
	// first check.
	Disk *DiskStatus `json:"disk,omitempty"`
}

// CrashLoopStatus describes a camera that keeps stopping.
type CrashLoopStatus struct {
	// Restarts is how many times in a row the camera stopped soon after
	// fliswarm started it.
	Restarts int `json:"restarts"`
	// LastExitCode is the exit code of its last run.
	LastExitCode int `json:"lastExitCode"`
	// LastLog are the last lines the container wrote.
	LastLog []string `json:"lastLog,omitempty"`
	// Backoff is the wait before the next start, and NextAttempt when
	// it ends.
	Backoff     Duration  `json:"backoff"`
	NextAttempt time.Time `json:"nextAttempt"`
}

// RolloutStatus describes a rolling change as it concerns one node.
type RolloutStatus struct {
	// Revision is the configuration revision being rolled out.
	Revision string `json:"revision"`
	// State is "pending" (waiting for a slot or an idle camera),
	// "updating" (this node's camera is being replaced), "halted" (this
	// node's new camera failed; the rollout stops here) or "held" (another
	// node halted the rollout).
	State string `json:"state"`
	// Message says why, for people ("update pending: camera exposing").
	Message string `json:"message,omitempty"`
	// HaltedNode is the node whose new camera failed, when halted or
	// held.
	HaltedNode string `json:"haltedNode,omitempty"`
}

// PullProgress is an image pull under way.
type PullProgress struct {
	Image string `json:"image"`
	// Current and Total bytes over every layer the engine reported.
	Current int64 `json:"current"`
	Total   int64 `json:"total"`
	// Status is the engine's last status line.
	Status    string    `json:"status,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// VolumeStatus is one volume on a node.
type VolumeStatus struct {
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	// Device is the volume's device option as found, "" when missing.
	Device string `json:"device,omitempty"`
}

// ImageStatus is the image on a node.
type ImageStatus struct {
	Ref     string `json:"ref"`
	ID      string `json:"id,omitempty"`
	Present bool   `json:"present"`
	// Digest is the registry digest (sha256:…) of the image the node's
	// container runs, "" when not known (no container, or an image that
	// was never pulled from the registry).
	Digest string `json:"digest,omitempty"`
	// LatestDigest is the digest Ref names at the registry as last read
	// (image_update_interval); "" when image updates are off or the
	// registry has not answered yet.
	LatestDigest string `json:"latestDigest,omitempty"`
	// UpdateWaiting: Ref names an image at the registry that the node's
	// container does not run yet (its update is pending, under way or
	// halted).
	UpdateWaiting bool `json:"updateWaiting,omitempty"`
	// RegistryError is why the last ask to the registry failed, "" when
	// it answered. The cameras are left as they are meanwhile.
	RegistryError string `json:"registryError,omitempty"`
}

// ContainerStatus is the managed container on a node.
type ContainerStatus struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	State        string    `json:"state"`
	Image        string    `json:"image"`
	ImageID      string    `json:"imageID,omitempty"`
	SpecHash     string    `json:"specHash,omitempty"`
	RestartCount int       `json:"restartCount"`
	StartedAt    time.Time `json:"startedAt,omitzero"`
	// Count is how many managed containers were found; more than one is
	// a fault the reconciler removes.
	Count int `json:"count"`
	// Adopted: fliswarm did not create this container (the Python
	// fliswarm did, or an operator), but it runs what the spec asks for,
	// so it was kept and is treated as fliswarm's own.
	Adopted bool `json:"adopted,omitempty"`
	// AutoRemove: the engine removes the container when it exits (an
	// adopted container started with --rm).
	AutoRemove bool `json:"autoRemove,omitempty"`
}

// ShortID is the 12-character container id, "NA" when none.
func (c *ContainerStatus) ShortID() string {
	if c == nil || c.ID == "" {
		return "NA"
	}
	if len(c.ID) > 12 {
		return c.ID[:12]
	}
	return c.ID
}

// Condition returns the condition of type t, or nil.
func (s *NodeStatus) Condition(t string) *Condition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition records a condition, keeping its transition time when the
// status did not change.
func (s *NodeStatus) SetCondition(t string, status bool, reason, message string, now time.Time) {
	if c := s.Condition(t); c != nil {
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, message
		return
	}
	s.Conditions = append(s.Conditions, Condition{
		Type: t, Status: status, Reason: reason, Message: message, LastTransitionTime: now,
	})
}

// Ready reports whether the node is usable (see Phase).
func (s *NodeStatus) Ready() bool { return s.Phase == PhaseReady }

// ContainerRunning reports whether the node's camera container runs with
// the current spec, whatever the camera connection.
func (s *NodeStatus) ContainerRunning() bool {
	c := s.Condition(ConditionContainerRunning)
	return c != nil && c.Status
}
