package v1

// This file holds what an operator's request to converge nodes asks for
// (the actor's `reconnect`, `fliswarm reconcile`) and the steps it hears
// of while its nodes are worked on.

// ConvergeOptions alter an operator's request to converge nodes.
type ConvergeOptions struct {
	// Redeploy pulls the image and replaces the container even when it
	// runs the current spec and image: the operators' way to deploy a
	// flicamera pushed to the registry under the same tag.
	Redeploy bool `json:"redeploy,omitempty"`
	// Force is Redeploy, and the volumes removed and created again.
	Force bool `json:"force,omitempty"`
	// Progress, when set, is called with each step taken on a node for the
	// request, as it is taken, from the controller's workers (so it must
	// not block). It is never called after the request has returned.
	Progress func(DeployStep) `json:"-"`
}

// DeployStepKind names a step of a node's reconcile.
type DeployStepKind string

// The steps a request hears of.
const (
	// StepPull: the image Target is being pulled.
	StepPull DeployStepKind = "pull"
	// StepPullProgress: how far the pull of Target is (Current, Total,
	// Status); at most one every few seconds.
	StepPullProgress DeployStepKind = "pull-progress"
	// StepPulled: the pull of Target ended; ImageID is the image the node
	// now has under the tag, Status the engine's last word on the pull.
	StepPulled DeployStepKind = "pulled"
	// StepRemoveContainer: the container Target is being removed
	// (Running: it was running).
	StepRemoveContainer DeployStepKind = "remove-container"
	// StepRemoveVolume, StepCreateVolume: the volume Target is removed or
	// created.
	StepRemoveVolume DeployStepKind = "remove-volume"
	StepCreateVolume DeployStepKind = "create-volume"
	// StepRun: the container Target is created from Image and started.
	StepRun DeployStepKind = "run"
	// StepStart, StepUnpause: the existing container Target is started or
	// unpaused.
	StepStart   DeployStepKind = "start"
	StepUnpause DeployStepKind = "unpause"
)

// DeployStep is one step taken on a node for an operator's request.
type DeployStep struct {
	Node string         `json:"node"`
	Kind DeployStepKind `json:"kind"`
	// Target is the image, container or volume the step is about.
	Target string `json:"target"`
	// Image is the image reference a container is run from (StepRun).
	Image string `json:"image,omitempty"`
	// ImageID is the pulled image's id (StepPulled).
	ImageID string `json:"imageID,omitempty"`
	// Running: the container removed was running (StepRemoveContainer).
	Running bool `json:"running,omitempty"`
	// Current and Total are the bytes of a pull so far and in all, over
	// the layers the engine has reported (StepPullProgress).
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
	// Status is the engine's last status line of a pull.
	Status string `json:"status,omitempty"`
	// Reason says why the step is taken (the plan action's reason).
	Reason string `json:"reason,omitempty"`
}
