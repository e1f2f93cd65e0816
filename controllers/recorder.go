package controllers

import (
	"fmt"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// EventRecorder records what happened to a node (pkg/events.Recorder):
// the reconciler's actions and decisions, and, through the Store, the
// transitions it observes.
type EventRecorder interface {
	Event(node, typ, reason, message string)
}

// event records one event when the controller has a recorder.
func (r *NodeReconciler) event(node, typ, reason, format string, args ...any) {
	if r.opts.Events != nil {
		r.opts.Events.Event(node, typ, reason, fmt.Sprintf(format, args...))
	}
}

// actionEvent records an action that ran: why it failed, or what it did
// when that is not recorded as it happens (a pull, with the image's
// digest; a create and a start, before the camera client can connect;
// a rollout's replacement, before its create).
func (r *NodeReconciler) actionEvent(node string, a Action, err error) {
	if err != nil {
		r.event(node, v1.EventWarning, v1.ReasonFailed, "%s %s: %v", a.Type, a.Target, err)
		return
	}
	because := ""
	if a.Reason != "" {
		because = ": " + a.Reason
	}
	switch a.Type {
	case ActionRemoveContainer:
		r.event(node, v1.EventNormal, v1.ReasonRemoved, "container %s removed%s", a.Target, because)
	case ActionRemoveVolume:
		r.event(node, v1.EventNormal, v1.ReasonVolumeRemoved, "volume %s removed%s", a.Target, because)
	case ActionCreateVolume:
		r.event(node, v1.EventNormal, v1.ReasonVolumeCreated, "volume %s created%s", a.Target, because)
	case ActionUnpauseContainer:
		r.event(node, v1.EventNormal, v1.ReasonUnpaused, "container %s unpaused%s", a.Target, because)
	case ActionRestorePrevious:
		r.event(node, v1.EventWarning, v1.ReasonRolledBack, "the camera this node ran before is back%s", because)
	}
}

// stopsInARow says how many stops in a row a crash is, from the second.
func stopsInARow(n int) string {
	if n < 2 {
		return ""
	}
	return fmt.Sprintf(" (%d stops in a row)", n)
}

// lastWords is the camera's last log line, for a back-off's message.
func lastWords(logs []string) string {
	for i := len(logs) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(logs[i]); l != "" {
			if len(l) > 200 {
				l = l[:200] + "…"
			}
			return "; its last line: " + l
		}
	}
	return ""
}

// transitions are the conditions whose changes are events: a condition
// that turns false (or is false when first seen) is a warning, one that
// turns true again is news.
var transitions = []struct {
	cond       string
	down, up   string
	downPrefix string
}{
	{v1.ConditionReachable, v1.ReasonUnreachable, v1.ReasonReachable, "the node does not answer"},
	{v1.ConditionEngineReady, v1.ReasonEngineDown, v1.ReasonEngineUp, "the engine does not answer"},
}

// recordTransitions records the changes between a node's last observed
// status (nil: none yet) and the new one.
func recordTransitions(rec EventRecorder, prev, cur *v1.NodeStatus) {
	for _, t := range transitions {
		c := cur.Condition(t.cond)
		if c == nil {
			continue
		}
		var was *v1.Condition
		if prev != nil {
			was = prev.Condition(t.cond)
		}
		switch {
		case !c.Status && (was == nil || was.Status):
			rec.Event(cur.Name, v1.EventWarning, t.down, t.downPrefix+suffix(c.Message))
		case c.Status && was != nil && !was.Status:
			rec.Event(cur.Name, v1.EventNormal, t.up, "back after "+c.LastTransitionTime.Sub(was.LastTransitionTime).Round(time.Second).String()+suffix(c.Message))
		}
	}
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}
