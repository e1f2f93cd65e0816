package v1

import "fmt"

// SetPhase applies the one readiness rule to the status and records the
// result in Phase and Message. cameraConnected says whether the camera
// actor answers (the actor's connection in the daemon; the controller's
// own probe without one).
//
// A node is ready only when it pings, its engine answers, its container
// runs (not paused, not restarting) and its camera is connected. Any other
// state is named by the first reason that fails, in this order: disabled,
// unreachable, engine down, rollout halted on this node, crash loop, no
// container (or a failed pull when there is none), paused, not running,
// camera not connected.
func (s *NodeStatus) SetPhase(cameraConnected bool) {
	s.Phase, s.Message = s.phase(cameraConnected)
}

func (s *NodeStatus) phase(camera bool) (string, string) {
	cond := func(t string) (bool, string) {
		c := s.Condition(t)
		if c == nil {
			return false, ""
		}
		return c.Status, c.Message
	}
	switch {
	case !s.Enabled:
		return PhaseDisabled, "the node is not enabled"
	case s.ObservedAt.IsZero():
		return PhaseNotObserved, "not observed yet"
	case !s.Reachable:
		_, msg := cond(ConditionReachable)
		return PhaseUnreachable, msg
	case !s.DockerAlive:
		_, msg := cond(ConditionEngineReady)
		return PhaseEngineDown, msg
	case s.Rollout != nil && s.Rollout.State == RolloutHalted:
		msg := s.Rollout.Message
		if msg == "" {
			msg = "the rollout of revision " + s.Rollout.Revision + " halted on this node"
		}
		return PhaseRolloutHalted, msg
	case s.CrashLoop != nil && (s.Container == nil || s.Container.State != "running"):
		return PhaseCrashLoopBackOff, fmt.Sprintf("camera stopped %d times in a row (last exit code %d); next start at %s",
			s.CrashLoop.Restarts, s.CrashLoop.LastExitCode, s.CrashLoop.NextAttempt.Format("15:04:05"))
	case s.Container == nil || (s.Container.State != "running" && s.Container.State != "paused"):
		if c := s.Condition(ConditionImageReady); c != nil && !c.Status && c.Reason == ReasonPullFailed {
			return PhaseImagePullFailed, c.Message
		}
		_, msg := cond(ConditionContainerRunning)
		if s.Container == nil {
			if msg == "" {
				msg = "no camera container"
			}
			return PhaseNoContainer, msg
		}
		if msg == "" {
			msg = "container " + s.Container.ShortID() + " is " + s.Container.State
		}
		return PhaseContainerNotRunning, msg
	case s.Container.State == "paused":
		return PhasePaused, "container " + s.Container.ShortID() + " is paused"
	case !camera:
		msg := "no connection to the camera actor"
		if s.CameraMessage != "" {
			msg = s.CameraMessage
		}
		return PhaseCameraNotConnected, msg
	}
	if s.Rollout != nil && s.Rollout.State == RolloutPending {
		return PhaseReady, s.Rollout.Message
	}
	return PhaseReady, "camera " + s.Container.ShortID() + " runs and answers"
}

// ReasonPullFailed is the ImageReady condition's reason after a failed
// pull.
const ReasonPullFailed = "PullFailed"

// The states of RolloutStatus.
const (
	RolloutPending  = "pending"
	RolloutUpdating = "updating"
	RolloutHalted   = "halted"
	RolloutHeld     = "held"
)
