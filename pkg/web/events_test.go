package web

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func TestDiffEvents(t *testing.T) {
	ready := v1.NodeStatus{Name: "gfa1", Phase: v1.PhaseReady, Container: &v1.ContainerStatus{ID: "c1", State: "running"}}
	with := func(f func(s *v1.NodeStatus)) v1.NodeStatus {
		s := ready
		c := *ready.Container
		s.Container = &c
		f(&s)
		return s
	}
	tests := []struct {
		name string
		prev *v1.NodeStatus
		cur  v1.NodeStatus
		want []string // kind: text prefix
	}{
		{"first sight", nil, ready, []string{"observed: Ready"}},
		{"nothing changed", &ready, ready, nil},
		{"crash loop", &ready, with(func(s *v1.NodeStatus) {
			s.Container.State = "exited"
			s.Phase = v1.PhaseCrashLoopBackOff
			s.CrashLoop = &v1.CrashLoopStatus{Restarts: 3, LastExitCode: 2, Backoff: v1.Seconds(4)}
		}), []string{"crash: camera stopped: container c1 is exited", "crash: crash loop: stopped 3 times in a row (exit code 2); next start in 4s",
			"state: Ready → CrashLoopBackOff"}},
		{"rollout halted", &ready, with(func(s *v1.NodeStatus) {
			s.Phase = v1.PhaseRolloutHalted
			s.Rollout = &v1.RolloutStatus{Revision: "r2", State: v1.RolloutHalted, Message: "camera exited"}
			s.LastError = "RolloutHalted: the rollout of revision r2 halted on gfa1"
		}), []string{"rollout: rollout of r2: halted: camera exited", "error: RolloutHalted", "state: Ready → RolloutHalted"}},
		{"rollout done", func() *v1.NodeStatus {
			s := with(func(s *v1.NodeStatus) { s.Rollout = &v1.RolloutStatus{Revision: "r2", State: v1.RolloutUpdating} })
			return &s
		}(), ready, []string{"rollout: rollout of r2: done here"}},
		{"new container", &ready, with(func(s *v1.NodeStatus) {
			s.Container.ID = "c2"
			s.LastActions = []string{"recreate-container flicamera-gfa1 (spec changed)"}
		}), []string{"action: recreate-container flicamera-gfa1"}},
		{"container removed", &ready, with(func(s *v1.NodeStatus) {
			s.Container = nil
			s.Phase = v1.PhaseNoContainer
		}), []string{"crash: container c1 is gone", "state: Ready → NoContainer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := diff(tt.prev, tt.cur)
			if len(got) != len(tt.want) {
				t.Fatalf("events %+v, want %q", got, tt.want)
			}
			for i, ev := range got {
				if s := ev.Kind + ": " + ev.Text; !strings.HasPrefix(s, tt.want[i]) {
					t.Errorf("event %d = %q, want %q…", i, s, tt.want[i])
				}
			}
		})
	}
}

func TestTrackerRing(t *testing.T) {
	tr := newTracker(3)
	now := time.Now()
	phases := []string{v1.PhaseReady, v1.PhaseCameraNotConnected, v1.PhaseReady, v1.PhaseUnreachable, v1.PhaseReady}
	for i, p := range phases {
		tr.observe([]v1.NodeStatus{{Name: "gfa1", Phase: p}}, now.Add(time.Duration(i)*time.Second))
	}
	got := tr.recent()["gfa1"]
	if len(got) != 3 || !strings.HasPrefix(got[0].Text, "Unreachable → Ready") || !strings.HasPrefix(got[2].Text, "CameraNotConnected → Ready") {
		t.Errorf("ring = %+v; want the 3 newest, newest first", got)
	}
}

func TestClassify(t *testing.T) {
	for phase, want := range map[string]string{
		v1.PhaseReady: "ok running", v1.PhaseCameraNotConnected: "warn recovering", v1.PhaseContainerNotRunning: "warn recovering",
		v1.PhaseNotObserved: "warn pending", v1.PhaseUnreachable: "bad down", v1.PhaseCrashLoopBackOff: "bad crash loop",
		v1.PhaseRolloutHalted: "bad halted", v1.PhaseDisabled: "off disabled",
	} {
		if h, s := Classify(phase); h+" "+s != want {
			t.Errorf("Classify(%s) = %s %s, want %s", phase, h, s, want)
		}
	}
}
