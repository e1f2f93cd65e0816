package v1

import (
	"testing"
	"time"
)

func TestContainerStatusShortID(t *testing.T) {
	tests := []struct {
		name string
		c    *ContainerStatus
		want string
	}{
		{"nil", nil, "NA"},
		{"empty id", &ContainerStatus{}, "NA"},
		{"short id", &ContainerStatus{ID: "abc"}, "abc"},
		{"twelve", &ContainerStatus{ID: "0123456789ab"}, "0123456789ab"},
		{"full", &ContainerStatus{ID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, "0123456789ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.ShortID(); got != tt.want {
				t.Errorf("ShortID() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSetCondition(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	var s NodeStatus

	s.SetCondition(ConditionEngineReady, false, "EngineUnreachable", "dial tcp: refused", t0)
	want := Condition{Type: ConditionEngineReady, Status: false, Reason: "EngineUnreachable", Message: "dial tcp: refused", LastTransitionTime: t0}
	if got := *s.Condition(ConditionEngineReady); got != want {
		t.Fatalf("new condition = %+v, want %+v", got, want)
	}

	// Same status, new reason and message: the transition time stays.
	s.SetCondition(ConditionEngineReady, false, "EngineTimeout", "timeout", t1)
	want = Condition{Type: ConditionEngineReady, Status: false, Reason: "EngineTimeout", Message: "timeout", LastTransitionTime: t0}
	if got := *s.Condition(ConditionEngineReady); got != want {
		t.Fatalf("unchanged status = %+v, want %+v", got, want)
	}

	// Status changes: the transition time moves.
	s.SetCondition(ConditionEngineReady, true, "EngineReady", "", t2)
	want = Condition{Type: ConditionEngineReady, Status: true, Reason: "EngineReady", LastTransitionTime: t2}
	if got := *s.Condition(ConditionEngineReady); got != want {
		t.Fatalf("changed status = %+v, want %+v", got, want)
	}

	// Another type is a second entry; the first is untouched.
	s.SetCondition(ConditionContainerRunning, true, "Running", "", t3)
	if len(s.Conditions) != 2 {
		t.Fatalf("conditions = %+v, want 2 entries", s.Conditions)
	}
	if got := s.Condition(ConditionEngineReady).LastTransitionTime; !got.Equal(t2) {
		t.Errorf("EngineReady transition time = %v, want %v", got, t2)
	}
	if s.Condition(ConditionDeviceConnected) != nil {
		t.Errorf("Condition of an unset type must be nil")
	}
}

func TestReadinessRule(t *testing.T) {
	now := time.Now()
	healthy := func() NodeStatus {
		s := NodeStatus{Enabled: true, Reachable: true, DockerAlive: true, ObservedAt: now,
			Container: &ContainerStatus{ID: "abcdef0123456789", State: "running"}}
		s.SetCondition(ConditionContainerRunning, true, "Running", "", now)
		return s
	}
	for _, tc := range []struct {
		name   string
		mutate func(*NodeStatus)
		camera bool
		want   string
	}{
		{"everything answers", func(*NodeStatus) {}, true, PhaseReady},
		{"camera not connected", func(*NodeStatus) {}, false, PhaseCameraNotConnected},
		{"disabled", func(s *NodeStatus) { s.Enabled = false }, true, PhaseDisabled},
		{"never observed", func(s *NodeStatus) { s.ObservedAt = time.Time{} }, true, PhaseNotObserved},
		{"partitioned, stale container", func(s *NodeStatus) { s.Reachable, s.DockerAlive = false, false }, true, PhaseUnreachable},
		{"engine dead", func(s *NodeStatus) { s.DockerAlive = false }, true, PhaseEngineDown},
		{"paused", func(s *NodeStatus) { s.Container.State = "paused" }, true, PhasePaused},
		{"restarting", func(s *NodeStatus) { s.Container.State = "restarting" }, true, PhaseContainerNotRunning},
		{"no container", func(s *NodeStatus) { s.Container = nil }, true, PhaseNoContainer},
		{"no container, pull failed", func(s *NodeStatus) {
			s.Container = nil
			s.SetCondition(ConditionImageReady, false, "PullFailed", "registry down", now)
		}, true, PhaseImagePullFailed},
		{"running, pull failed: still usable", func(s *NodeStatus) {
			s.SetCondition(ConditionImageReady, false, "PullFailed", "registry down", now)
		}, true, PhaseReady},
		{"crash loop", func(s *NodeStatus) {
			s.Container.State = "exited"
			s.CrashLoop = &CrashLoopStatus{Restarts: 3, LastExitCode: 2}
		}, true, PhaseCrashLoopBackOff},
		{"halted rollout", func(s *NodeStatus) { s.Rollout = &RolloutStatus{State: RolloutHalted} }, true, PhaseRolloutHalted},
		{"held rollout, camera fine", func(s *NodeStatus) { s.Rollout = &RolloutStatus{State: RolloutHeld} }, true, PhaseReady},
	} {
		s := healthy()
		tc.mutate(&s)
		s.SetPhase(tc.camera)
		if s.Phase != tc.want {
			t.Errorf("%s: phase %s (%s), want %s", tc.name, s.Phase, s.Message, tc.want)
		}
		if s.Ready() != (tc.want == PhaseReady) {
			t.Errorf("%s: Ready() = %v", tc.name, s.Ready())
		}
		if s.Phase != PhaseReady && s.Message == "" && tc.want != PhaseUnreachable && tc.want != PhaseEngineDown {
			t.Errorf("%s: no message", tc.name)
		}
	}
}
