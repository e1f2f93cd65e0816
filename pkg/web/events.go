package web

import (
	"fmt"
	"slices"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Event is one thing that happened to a node, derived from two successive
// statuses: a change of phase, actions taken, a camera that stopped, a
// restart, a crash loop, a rollout step, an error.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is observed (the first state seen), state, recovered, action,
	// crash, restart, rollout or error.
	Kind string `json:"kind"`
	Text string `json:"text"`
}

// The kinds of events.
const (
	EventObserved  = "observed"
	EventState     = "state"
	EventRecovered = "recovered"
	EventAction    = "action"
	EventCrash     = "crash"
	EventRestart   = "restart"
	EventRollout   = "rollout"
	EventError     = "error"
)

// tracker keeps a small ring of recent events per node, built from the
// successive statuses it is shown.
type tracker struct {
	size   int
	prev   map[string]v1.NodeStatus
	events map[string][]Event // oldest first, at most size
}

func newTracker(size int) *tracker {
	return &tracker{size: size, prev: map[string]v1.NodeStatus{}, events: map[string][]Event{}}
}

// observe records the events between the statuses last seen and nodes.
func (t *tracker) observe(nodes []v1.NodeStatus, now time.Time) {
	for _, cur := range nodes {
		var prev *v1.NodeStatus
		if p, ok := t.prev[cur.Name]; ok {
			prev = &p
		}
		for _, ev := range diff(prev, cur) {
			ev.Time = now
			ring := append(t.events[cur.Name], ev)
			if len(ring) > t.size {
				ring = slices.Clone(ring[len(ring)-t.size:])
			}
			t.events[cur.Name] = ring
		}
		t.prev[cur.Name] = cur
	}
}

// recent returns each node's events, newest first.
func (t *tracker) recent() map[string][]Event {
	out := make(map[string][]Event, len(t.events))
	for n, evs := range t.events {
		r := slices.Clone(evs)
		slices.Reverse(r)
		out[n] = r
	}
	return out
}

// diff lists what changed from prev (nil: first sight) to cur.
func diff(prev *v1.NodeStatus, cur v1.NodeStatus) []Event {
	var out []Event
	add := func(kind, format string, args ...any) {
		out = append(out, Event{Kind: kind, Text: fmt.Sprintf(format, args...)})
	}
	if prev == nil {
		if cur.Phase != "" {
			add(EventObserved, "%s%s", cur.Phase, suffix(cur.Message))
		}
		return out
	}

	// The camera stopped: its container is no longer running.
	if pc, cc := prev.Container, cur.Container; pc != nil && pc.State == "running" {
		switch {
		case cc == nil:
			add(EventCrash, "container %s is gone", pc.ShortID())
		case cc.ID == pc.ID && cc.State != "running" && cc.State != "paused":
			add(EventCrash, "camera stopped: container %s is %s", cc.ShortID(), cc.State)
		}
	}
	if !slices.Equal(prev.LastActions, cur.LastActions) {
		for _, a := range cur.LastActions {
			add(EventAction, "%s", a)
		}
	}
	if cur.Restarts > prev.Restarts {
		add(EventRestart, "camera restarted by fliswarm (%d since the daemon started)", cur.Restarts)
	}
	switch pl, cl := prev.CrashLoop, cur.CrashLoop; {
	case cl != nil && (pl == nil || pl.Restarts != cl.Restarts):
		add(EventCrash, "crash loop: stopped %d times in a row (exit code %d); next start in %s",
			cl.Restarts, cl.LastExitCode, cl.Backoff.D().Round(time.Millisecond))
	case cl == nil && pl != nil:
		add(EventRecovered, "crash loop over")
	}
	switch pr, cr := prev.Rollout, cur.Rollout; {
	case cr != nil && (pr == nil || pr.State != cr.State || pr.Revision != cr.Revision):
		add(EventRollout, "rollout of %s: %s%s", cr.Revision, cr.State, suffix(cr.Message))
	case cr == nil && pr != nil:
		add(EventRollout, "rollout of %s: done here", pr.Revision)
	}
	if cur.LastError != "" && cur.LastError != prev.LastError {
		add(EventError, "%s", cur.LastError)
	}
	if cur.Phase != prev.Phase {
		if cur.Phase == v1.PhaseReady {
			add(EventRecovered, "%s → Ready%s", prev.Phase, suffix(cur.Message))
		} else {
			add(EventState, "%s → %s%s", prev.Phase, cur.Phase, suffix(cur.Message))
		}
	}
	return out
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}
