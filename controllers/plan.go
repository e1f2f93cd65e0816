package controllers

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Action is one step of a plan (the type lives in api/v1, beside the
// control socket's results that carry it).
type Action = v1.Action

// Plan is the ordered list of actions that converges one node.
type Plan struct {
	Node    string   `json:"node"`
	Actions []Action `json:"actions"`
}

// Empty reports whether the node needs nothing.
func (p Plan) Empty() bool { return len(p.Actions) == 0 }

// Disruptive reports whether any action takes a running camera down.
func (p Plan) Disruptive() bool {
	for _, a := range p.Actions {
		if a.Disruptive {
			return true
		}
	}
	return false
}

// Lines renders the plan one action per line, "nothing to do" when empty.
func (p Plan) Lines() []string {
	if p.Empty() {
		return []string{"nothing to do"}
	}
	out := make([]string, len(p.Actions))
	for i, a := range p.Actions {
		out[i] = a.String()
	}
	return out
}

// Desired is what a node should have.
type Desired struct {
	Container  render.Container
	Volumes    []render.Volume
	PullPolicy v1.PullPolicy
}

// Observed is what was found on a node's engine.
type Observed struct {
	// Containers are this node's managed containers and any container
	// with the desired name, sorted by creation.
	Containers []engine.Container
	// Volumes by name; a missing volume is absent from the map.
	Volumes map[string]engine.Volume
	// Image is the desired image on the node, nil when not present.
	Image *engine.Image
	// OwnImage is the image the container named as the spec names it
	// runs, when that container was not created by fliswarm (nil when
	// unknown): its environment, user and volumes are not differences
	// (see adoptDiff).
	OwnImage *engine.Image
	// Adopted is the ID of that container when it runs what the spec asks
	// for: observe gave it the spec's hash label, so that it counts as
	// fliswarm's own from then on.
	Adopted string
	// Previous and Halted are the node's rollout history (history.go):
	// the camera a rollout replaced, kept stopped, and the record of a
	// halt; nil when absent. They are not in Containers.
	Previous, Halted *engine.Container
}

// PlanOptions alter a plan.
type PlanOptions struct {
	// Redeploy pulls the image (unless Pulled) and recreates the container
	// even when current (the actor's reconnect).
	Redeploy bool
	// Force is Redeploy, and the volumes recreated too (the actor's
	// reconnect --force).
	Force bool
	// Pulled says the image was just pulled: a pull policy of always does
	// not pull it again.
	Pulled bool
	// Keep leaves a container that differs from the spec as it is (it is
	// still started when stopped): the rollout of the spec is halted.
	Keep bool
}

// PlanNode compares desired with observed and returns the actions that
// converge the node, in the order they must run. It is pure.
//
// The order keeps a working camera safe: the image is pulled before
// anything is removed, so an unreachable registry never takes a running
// container down.
func PlanNode(node string, want Desired, have Observed, opts PlanOptions) Plan {
	p := Plan{Node: node}
	name := want.Container.Name
	opts.Redeploy = opts.Redeploy || opts.Force

	var keeper *engine.Container
	var extras []engine.Container
	for i := range have.Containers {
		c := have.Containers[i]
		if c.Name == name && keeper == nil {
			keeper = &have.Containers[i]
			continue
		}
		extras = append(extras, c)
	}

	// Volumes: which are missing, which differ.
	var createVols, recreateVols []Action
	for _, v := range want.Volumes {
		got, ok := have.Volumes[v.Name]
		switch {
		case !ok:
			createVols = append(createVols, Action{Type: ActionCreateVolume, Target: v.Name, Reason: "volume missing"})
		case opts.Force:
			recreateVols = append(recreateVols, Action{Type: ActionRemoveVolume, Target: v.Name, Reason: "forced"},
				Action{Type: ActionCreateVolume, Target: v.Name, Reason: "forced"})
		default:
			if diff := volumeDiff(v, got); diff != "" {
				recreateVols = append(recreateVols, Action{Type: ActionRemoveVolume, Target: v.Name, Reason: diff},
					Action{Type: ActionCreateVolume, Target: v.Name, Reason: diff})
			}
		}
	}

	// The container.
	var ctr *Action
	switch {
	case keeper == nil:
		ctr = &Action{Type: ActionCreateContainer, Target: name, Reason: "no container"}
	case keeper.State == "removing":
		// Docker is removing it (someone ran docker rm -f): create the
		// new one as soon as the name is free.
		ctr = &Action{Type: ActionCreateContainer, Target: name, Reason: "container is being removed"}
		keeper = nil
	case opts.Force:
		ctr = &Action{Type: ActionRecreateContainer, Target: name, ID: keeper.ID, Reason: "forced"}
	case opts.Redeploy:
		ctr = &Action{Type: ActionRecreateContainer, Target: name, ID: keeper.ID, Reason: "redeploy requested"}
	case keeper.State == "paused":
		ctr = &Action{Type: ActionUnpauseContainer, Target: name, ID: keeper.ID, Reason: "container is paused"}
	case len(recreateVols) > 0:
		ctr = &Action{Type: ActionRecreateContainer, Target: name, ID: keeper.ID, Reason: "volume " + recreateVols[0].Target + " is recreated: " + recreateVols[0].Reason}
	default:
		if reason := containerDiff(want.Container, *keeper, have.Image, have.OwnImage); reason != "" && !opts.Keep {
			ctr = &Action{Type: ActionRecreateContainer, Target: name, ID: keeper.ID, Reason: reason}
		} else if !keeper.Running {
			ctr = &Action{Type: ActionStartContainer, Target: name, ID: keeper.ID, Reason: stoppedReason(*keeper)}
		}
	}
	if ctr != nil && ctr.Type == ActionRecreateContainer && keeper.Running {
		ctr.Disruptive = true
	}

	// 1. Pull.
	switch {
	case have.Image == nil:
		p.Actions = append(p.Actions, Action{Type: ActionPullImage, Target: want.Container.Config.Image, Reason: "image not present"})
	case opts.Redeploy && !opts.Pulled:
		p.Actions = append(p.Actions, Action{Type: ActionPullImage, Target: want.Container.Config.Image, Reason: "redeploy: pull the latest image"})
	case want.PullPolicy == v1.PullAlways && !opts.Pulled && ctr != nil &&
		(ctr.Type == ActionCreateContainer || ctr.Type == ActionRecreateContainer):
		p.Actions = append(p.Actions, Action{Type: ActionPullImage, Target: want.Container.Config.Image, Reason: "pull policy always"})
	}
	// 2. Duplicates and strays.
	for _, c := range extras {
		reason := "duplicate container for node " + node
		if c.Name != name {
			reason = "stray managed container " + c.Name + " for node " + node
		}
		p.Actions = append(p.Actions, Action{Type: ActionRemoveContainer, Target: c.Name, ID: c.ID, Reason: reason})
	}
	// 3. Volumes; a volume in use is recreated only after its container
	// is gone, and the container comes back after.
	if len(recreateVols) > 0 && keeper != nil {
		p.Actions = append(p.Actions, Action{Type: ActionRemoveContainer, Target: name, ID: keeper.ID,
			Reason: ctr.Reason, Disruptive: keeper.Running})
		ctr = &Action{Type: ActionCreateContainer, Target: name, Reason: ctr.Reason}
	}
	p.Actions = append(p.Actions, recreateVols...)
	p.Actions = append(p.Actions, createVols...)
	// 4. The container.
	if ctr != nil {
		p.Actions = append(p.Actions, *ctr)
	}
	return p
}

func stoppedReason(c engine.Container) string {
	if c.State == "created" {
		return "container created but not started"
	}
	return fmt.Sprintf("container %s (exit code %d)", c.State, c.ExitCode)
}

// containerDiff says why a container does not match the spec, "" when it
// does. A container fliswarm did not create matches when it runs what the
// spec asks for (adoptDiff); own is the image it runs.
func containerDiff(want render.Container, have engine.Container, img, own *engine.Image) string {
	hash, ok := have.Labels[render.LabelSpecHash]
	if !ok {
		if d := adoptDiff(want, have, img, own); len(d) > 0 {
			return "container was not created by fliswarm and differs from the spec: " + strings.Join(d, ", ")
		}
		return ""
	}
	if hash != want.Hash {
		old, ok := render.SummaryOf(have.Labels)
		if !ok {
			return "spec changed (hash " + hash + " → " + want.Hash + ")"
		}
		return "spec changed: " + summaryDiff(old, want.Summary)
	}
	if img != nil && have.ImageID != "" && img.ID != have.ImageID {
		return "image changed: " + short(have.ImageID) + " → " + short(img.ID)
	}
	if img == nil && strings.Contains(want.Config.Image, "@sha256:") {
		// A pinned image (image_update_interval) that is not on the node
		// is not what the container runs.
		_, digest, _ := strings.Cut(want.Config.Image, "@")
		return "image changed: " + short(have.ImageID) + " → " + short(digest)
	}
	return ""
}

// summaryDiff names each field that differs, with old and new values for
// short scalar fields.
func summaryDiff(old, cur render.Summary) string {
	var parts []string
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(cur)
	t := ov.Type()
	for i := 0; i < t.NumField(); i++ {
		a, b := ov.Field(i).Interface(), nv.Field(i).Interface()
		if cmp.Equal(a, b) {
			continue
		}
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if t.Field(i).Type.Kind() == reflect.Slice {
			parts = append(parts, name)
		} else {
			parts = append(parts, fmt.Sprintf("%s %v → %v", name, a, b))
		}
	}
	if len(parts) == 0 {
		return "spec hash changed"
	}
	return strings.Join(parts, ", ")
}

// volumeDiff says how a volume differs from the spec, "" when it does not.
func volumeDiff(want render.Volume, have engine.Volume) string {
	var parts []string
	if want.Driver != have.Driver {
		parts = append(parts, fmt.Sprintf("driver %s → %s", have.Driver, want.Driver))
	}
	keys := map[string]bool{}
	for k := range want.Opts {
		keys[k] = true
	}
	for k := range have.Options {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		w, wok := want.Opts[k]
		h, hok := have.Options[k]
		switch {
		case wok && !hok:
			parts = append(parts, fmt.Sprintf("option %s added", k))
		case !wok && hok:
			parts = append(parts, fmt.Sprintf("option %s removed", k))
		case w != h:
			parts = append(parts, fmt.Sprintf("option %s %q → %q", k, h, w))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "volume changed: " + strings.Join(parts, ", ")
}

func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
