package controllers

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// A node's rollout history lives on the node, where a restarted fliswarm
// (or one on another computer) reads it back, never in memory alone:
//
//   - "<container>-previous" is the camera a rollout replaced, stopped and
//     renamed (Docker cannot relabel a container, so the name is its
//     role; it keeps the labels it was created with). It exists from the
//     moment a rollout takes the old camera down until the new camera
//     answers, then it is removed: at most one per node. Going back is a
//     rename and a start, with the image it ran, whatever the tag names
//     now. A restarted fliswarm that finds it knows the node is in the
//     middle of a rollout: the node takes its slot again and its new
//     camera is judged as one just started (since its StartedAt).
//   - "<container>-halted" records a halt: a container that is never
//     started, created from the image of the spec whose rollout halted on
//     the node, with fliswarm's labels for that spec (its hash), the role
//     label and the reason. While that spec is in force, the rollout stays
//     halted on that node, across restarts; once another spec is in
//     force, the record is removed.
//
// Neither is a stray or duplicate (plan.go never sees them) nor adopted
// (adoption only looks at the container named as the spec names it).
const (
	previousSuffix = "-previous"
	haltedSuffix   = "-halted"
	// labelRole marks a container that records history ("halted").
	labelRole = "org.sdss.fliswarm.role"
	// labelHaltReason is why the rollout halted.
	labelHaltReason = "org.sdss.fliswarm.halt-reason"
	roleHalted      = "halted"
	// retireGrace is how long a replaced camera is given to stop: none,
	// as when it was removed with force.
	retireGrace = 0 * time.Second
)

// splitHistory takes the history containers out of cs: what remains is
// the node's camera containers (and strays), previous and halted the
// records named for container name, nil when absent.
func splitHistory(cs []engine.Container, name string) (rest []engine.Container, previous, halted *engine.Container) {
	for i := range cs {
		c := cs[i]
		switch {
		case c.Name == name+previousSuffix && previous == nil:
			previous = &c
		case c.Name == name+haltedSuffix && halted == nil:
			halted = &c
		default:
			rest = append(rest, c)
		}
	}
	return rest, previous, halted
}

// haltRecordOf returns the reason a halt record gives for want, and false
// when the record is for another spec (or there is none).
func haltRecordOf(h *engine.Container, want Desired) (string, bool) {
	if h == nil || h.Labels[render.LabelSpecHash] != want.Container.Hash || h.Image != want.Container.Config.Image {
		return "", false
	}
	return h.Labels[labelHaltReason], true
}

// goBackPlan is what puts a node back after its new camera failed under a
// rollout: the halt recorded, the failed camera removed and, when the
// camera it replaced was kept, that one renamed back and started. Pure.
func goBackPlan(want Desired, have Observed, failedID, reason string) []Action {
	name := want.Container.Name
	var out []Action
	if have.Halted != nil {
		out = append(out, Action{Type: ActionRemoveContainer, Target: have.Halted.Name, ID: have.Halted.ID, Reason: "halt record replaced"})
	}
	out = append(out, Action{Type: ActionRecordHalt, Target: name + haltedSuffix, Reason: reason})
	if have.Previous == nil {
		return out // the spec this node ran before is not known: left as it is
	}
	if failedID != "" {
		out = append(out, Action{Type: ActionRemoveContainer, Target: name, ID: failedID, Reason: "rollout halted: " + reason})
	}
	return append(out, Action{Type: ActionRestorePrevious, Target: name, ID: have.Previous.ID, Reason: "rollout halted: back to the camera it replaced"})
}

// cleanupPlan removes history that is over: the replaced camera once the
// new one answers (done), a halt record of a spec no longer in force.
// Pure.
func cleanupPlan(want Desired, have Observed, done bool) []Action {
	var out []Action
	if done && have.Previous != nil {
		out = append(out, Action{Type: ActionRemoveContainer, Target: have.Previous.Name, ID: have.Previous.ID, Reason: "the new camera answers"})
	}
	if have.Halted != nil {
		if _, current := haltRecordOf(have.Halted, want); !current {
			out = append(out, Action{Type: ActionRemoveContainer, Target: have.Halted.Name, ID: have.Halted.ID, Reason: "halt record of a spec no longer in force"})
		}
	}
	return out
}

// retire takes the running camera id down and keeps it stopped as
// "<name>-previous" (replacing an older one). A camera the engine removes
// as it stops (auto-remove) is not kept.
func (r *NodeReconciler) retire(ctx context.Context, eng Engine, name, id string) error {
	if err := eng.RemoveContainer(ctx, name+previousSuffix, true); err != nil && !engine.IsNotFound(err) {
		return fmt.Errorf("remove the older %s: %w", name+previousSuffix, err)
	}
	if err := eng.StopContainer(ctx, id, retireGrace); err != nil && !engine.IsNotFound(err) {
		return err
	}
	if err := eng.RenameContainer(ctx, id, name+previousSuffix); err != nil && !engine.IsNotFound(err) {
		return err
	}
	return nil
}

// recordHalt creates the halt record of want on the node (see above).
func recordHalt(ctx context.Context, eng Engine, want Desired, reason string) error {
	labels := maps.Clone(want.Container.Config.Labels)
	labels[labelRole] = roleHalted
	labels[labelHaltReason] = reason
	cfg := &container.Config{Image: want.Container.Config.Image, Labels: labels, Cmd: []string{"halted"}}
	_, err := eng.CreateContainer(ctx, want.Container.Name+haltedSuffix, cfg, &container.HostConfig{NetworkMode: "none"})
	return err
}

// restorePrevious renames the kept camera id back to name and starts it.
func (r *NodeReconciler) restorePrevious(ctx context.Context, eng Engine, node, name, id string) error {
	if err := eng.RenameContainer(ctx, id, name); err != nil {
		return err
	}
	return r.start(ctx, eng, node, name, id)
}
