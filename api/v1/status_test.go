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

func TestReady(t *testing.T) {
	var s NodeStatus
	if s.Ready() {
		t.Fatal("a node without conditions is not ready")
	}
	now := time.Now()
	s.SetCondition(ConditionContainerRunning, false, "NoContainer", "", now)
	if s.Ready() {
		t.Fatal("ContainerRunning=False is not ready")
	}
	s.SetCondition(ConditionContainerRunning, true, "Running", "", now)
	if !s.Ready() {
		t.Fatal("ContainerRunning=True is ready")
	}
}
