package camlog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/sdss/fliswarm/pkg/engine"
)

// fakeEngine holds containers by name and each container's log, and
// applies since/until/tail as dockerd 20.10 does: the tail of the whole
// log first, then the time bounds.
type fakeEngine struct {
	containers map[string]engine.Container
	logs       map[string][]engine.LogLine // by ID
	calls      []engine.LogOptions
}

func (f *fakeEngine) InspectContainer(_ context.Context, id string) (engine.Container, error) {
	c, ok := f.containers[id]
	if !ok {
		return engine.Container{}, cerrdefs.ErrNotFound.WithMessage("No such container: " + id)
	}
	return c, nil
}

func (f *fakeEngine) StreamLogs(_ context.Context, id string, o engine.LogOptions, fn func(engine.LogLine) error) error {
	f.calls = append(f.calls, o)
	lines := f.logs[id]
	if o.Tail >= 0 && len(lines) > o.Tail {
		lines = lines[len(lines)-o.Tail:]
	}
	for _, l := range lines {
		if !o.Since.IsZero() && l.Time.Before(o.Since) {
			continue
		}
		if !o.Until.IsZero() && l.Time.After(o.Until) {
			return nil
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

var t0 = time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func lines(from, to int, prefix string) []engine.LogLine {
	var out []engine.LogLine
	for s := from; s <= to; s++ {
		out = append(out, engine.LogLine{Time: at(s), Stream: "stdout", Text: prefix + time.Duration(s).String()})
	}
	return out
}

func texts(t *testing.T, in Instance, eng Engine, req Request) []string {
	t.Helper()
	var out []string
	if err := in.Stream(context.Background(), eng, req, func(l engine.LogLine) error {
		out = append(out, l.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPickCurrentShowsItsCurrentRun(t *testing.T) {
	// Restarted in place at 100: its log holds the crashed run before.
	f := &fakeEngine{
		containers: map[string]engine.Container{"flicamera-gfa1": {ID: "c1", Name: "flicamera-gfa1", Running: true, State: "running", StartedAt: at(100)}},
		logs:       map[string][]engine.LogLine{"c1": append(lines(1, 5, "old"), lines(101, 103, "new")...)},
	}
	in, err := Pick(context.Background(), f, "flicamera-gfa1", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(t, in, f, Request{Tail: 10}); strings.Join(got, " ") != "new101ns new102ns new103ns" {
		t.Errorf("current run: %v", got)
	}
	if !strings.Contains(in.Description, "running since") {
		t.Errorf("description %q", in.Description)
	}
}

func TestPickPreviousAfterCrashInPlace(t *testing.T) {
	f := &fakeEngine{
		containers: map[string]engine.Container{"flicamera-gfa1": {ID: "c1", Name: "flicamera-gfa1", Running: true, State: "running", StartedAt: at(100)}},
		logs:       map[string][]engine.LogLine{"c1": append(lines(1, 5, "old"), lines(101, 103, "new")...)},
	}
	in, err := Pick(context.Background(), f, "flicamera-gfa1", true)
	if err != nil {
		t.Fatal(err)
	}
	// The engine would take the tail before Until: the run's own last two
	// lines must come out, not nothing.
	if got := texts(t, in, f, Request{Tail: 2}); strings.Join(got, " ") != "old4ns old5ns" {
		t.Errorf("previous run: %v", got)
	}
	if !strings.Contains(in.Description, "before its restart") {
		t.Errorf("description %q", in.Description)
	}
}

func TestPickPreviousAfterRollout(t *testing.T) {
	f := &fakeEngine{
		containers: map[string]engine.Container{
			"flicamera-gfa1":          {ID: "c2", Name: "flicamera-gfa1", Running: true, State: "running", Created: at(50), StartedAt: at(51)},
			"flicamera-gfa1-previous": {ID: "c1", Name: "flicamera-gfa1-previous", State: "exited", StartedAt: at(1), FinishedAt: at(49)},
		},
		logs: map[string][]engine.LogLine{"c1": lines(1, 9, "old"), "c2": lines(52, 53, "new")},
	}
	in, err := Pick(context.Background(), f, "flicamera-gfa1", true)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "c1" || !strings.Contains(in.Description, "rollout replaced") {
		t.Fatalf("picked %+v", in)
	}
	if got := texts(t, in, f, Request{Tail: 1, Follow: true}); strings.Join(got, " ") != "old9ns" {
		t.Errorf("previous container: %v", got)
	}
	if f.calls[len(f.calls)-1].Follow {
		t.Errorf("a stopped instance is followed")
	}
}

func TestPickPreviousTheOneThatEndedLast(t *testing.T) {
	// A rollout kept c1; the new camera c2 then crashed at 60 and was
	// restarted in place at 70: its crashed run ended after c1.
	f := &fakeEngine{
		containers: map[string]engine.Container{
			"flicamera-gfa1":          {ID: "c2", Name: "flicamera-gfa1", Running: true, State: "running", Created: at(50), StartedAt: at(70)},
			"flicamera-gfa1-previous": {ID: "c1", Name: "flicamera-gfa1-previous", State: "exited", StartedAt: at(1), FinishedAt: at(49)},
		},
		logs: map[string][]engine.LogLine{"c1": lines(1, 9, "old"), "c2": append(lines(51, 60, "crashed"), lines(71, 72, "new")...)},
	}
	in, err := Pick(context.Background(), f, "flicamera-gfa1", true)
	if err != nil {
		t.Fatal(err)
	}
	if in.ID != "c2" || !in.Until.Equal(at(70)) {
		t.Fatalf("picked %+v, want c2's run before 70", in)
	}
	if got := texts(t, in, f, Request{Tail: 1}); strings.Join(got, " ") != "crashed60ns" {
		t.Errorf("lines %v", got)
	}
}

func TestPickPreviousOfAStoppedCameraIsItsLastRun(t *testing.T) {
	f := &fakeEngine{
		containers: map[string]engine.Container{"flicamera-gfa1": {ID: "c1", Name: "flicamera-gfa1", State: "exited", ExitCode: 137, StartedAt: at(100), FinishedAt: at(110)}},
		logs:       map[string][]engine.LogLine{"c1": append(lines(1, 5, "older"), lines(101, 104, "last")...)},
	}
	in, err := Pick(context.Background(), f, "flicamera-gfa1", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(t, in, f, Request{Tail: 2}); strings.Join(got, " ") != "last103ns last104ns" {
		t.Errorf("lines %v", got)
	}
	if !strings.Contains(in.Description, "exit code 137") {
		t.Errorf("description %q", in.Description)
	}
}

func TestPickErrors(t *testing.T) {
	fresh := &fakeEngine{
		containers: map[string]engine.Container{"flicamera-gfa1": {ID: "c1", Name: "flicamera-gfa1", Running: true, StartedAt: at(100)}},
		logs:       map[string][]engine.LogLine{"c1": lines(101, 102, "x")},
	}
	if _, err := Pick(context.Background(), fresh, "flicamera-gfa1", true); !errors.Is(err, ErrNoPrevious) ||
		!strings.Contains(err.Error(), "has not been restarted") {
		t.Errorf("never restarted: %v", err)
	}
	empty := &fakeEngine{}
	if _, err := Pick(context.Background(), empty, "flicamera-gfa1", false); !errors.Is(err, ErrNoContainer) {
		t.Errorf("no container: %v", err)
	}
	if _, err := Pick(context.Background(), empty, "flicamera-gfa1", true); !errors.Is(err, ErrNoPrevious) {
		t.Errorf("no container, previous: %v", err)
	}
}
