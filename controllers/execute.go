package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// This file is the act step: one engine call (or two) per action, no
// waiting. Whether a new camera answers is checked by later reconciles.

// errNameInUse is a create that found the container's name still taken
// (Docker is still removing the old one); the reconcile is retried soon.
var errNameInUse = errors.New("container name still in use")

// execute runs one action. It returns the id of a container it created or
// started, "" for other actions.
func (r *NodeReconciler) execute(ctx context.Context, eng Engine, node string, spec *v1.Swarm, want Desired, a Action, t ticket) (string, error) {
	switch a.Type {
	case ActionPullImage:
		return "", r.pullPinned(ctx, eng, node, spec, want, a.Target, t)
	case ActionRemoveContainer:
		return "", eng.RemoveContainer(ctx, a.ID, true)
	case ActionRemoveVolume:
		return "", eng.RemoveVolume(ctx, a.Target, true)
	case ActionCreateVolume:
		for _, v := range want.Volumes {
			if v.Name == a.Target {
				_, err := eng.CreateVolume(ctx, v.Name, v.Driver, v.Opts, v.Labels)
				return "", err
			}
		}
		return "", fmt.Errorf("volume %s is not in the spec", a.Target)
	case ActionRecreateContainer:
		// A running camera is kept stopped until its successor answers
		// (history.go); a stopped one is removed.
		remove := func() error { return eng.RemoveContainer(ctx, a.ID, true) }
		if a.Disruptive {
			remove = func() error { return r.retire(ctx, eng, want.Container.Name, a.ID) }
		}
		if err := remove(); err != nil {
			return "", err
		}
		r.event(node, v1.EventNormal, v1.ReasonRolloutStarted, "camera %s replaced: %s", a.Target, a.Reason)
		t.report(v1.DeployStep{Kind: v1.StepRun, Target: a.Target, Image: want.Container.Config.Image, Reason: a.Reason})
		return r.createAndStart(ctx, eng, node, want)
	case ActionCreateContainer:
		return r.createAndStart(ctx, eng, node, want)
	case ActionStartContainer:
		return a.ID, r.start(ctx, eng, node, want.Container.Name, a.ID)
	case ActionUnpauseContainer:
		return "", eng.UnpauseContainer(ctx, a.ID)
	case ActionRecordHalt:
		return "", recordHalt(ctx, eng, want, a.Reason)
	case ActionRestorePrevious:
		return a.ID, r.restorePrevious(ctx, eng, node, want.Container.Name, a.ID)
	}
	return "", fmt.Errorf("unknown action %q", a.Type)
}

// createAndStart creates the container and starts it. A name still in use
// (Docker removing the old container, or one created since we looked) is
// removed, and the reconcile comes back for the create.
func (r *NodeReconciler) createAndStart(ctx context.Context, eng Engine, node string, want Desired) (string, error) {
	c := want.Container
	r.expect.Expect(node, c.Name, "create")
	id, err := eng.CreateContainer(ctx, c.Name, c.Config, c.HostConfig)
	if err != nil {
		r.expect.Forget(node, c.Name, "create")
	}
	if engine.IsConflict(err) {
		cs, lerr := eng.ListContainers(ctx, nil, c.Name)
		if lerr == nil && len(cs) > 0 {
			if rerr := eng.RemoveContainer(ctx, cs[0].ID, true); rerr != nil && !engine.IsConflict(rerr) {
				return "", rerr
			}
		}
		return "", fmt.Errorf("%w: %s", errNameInUse, c.Name)
	}
	if err != nil {
		return "", err
	}
	r.event(node, v1.EventNormal, v1.ReasonCreated, "container %s (%s) created from %s", c.Name, short(id), c.Config.Image)
	return id, r.start(ctx, eng, node, c.Name, id)
}

// start starts a container, expecting its `start` event (see
// Expectations). The camera client's connection counts for the new camera
// only from now on: it is cleared before the start, so that a client
// quick to connect is never lost.
func (r *NodeReconciler) start(ctx context.Context, eng Engine, node, name, id string) error {
	r.store.ContainerStarted(node)
	r.expect.Expect(node, name, "start")
	err := eng.StartContainer(ctx, id)
	if err == nil {
		r.event(node, v1.EventNormal, v1.ReasonStarted, "container %s (%s) started", name, short(id))
	}
	if err != nil {
		r.expect.Forget(node, name, "start")
	}
	return err
}

// pullPinned pulls ref. A pinned ref (repo@sha256:…) is pulled through
// its tag, so that the node's tag names what the registry's does (as a
// pull of the tag would leave it), then by digest if the tag has moved on
// meanwhile.
func (r *NodeReconciler) pullPinned(ctx context.Context, eng Engine, node string, spec *v1.Swarm, want Desired, ref string, t ticket) error {
	tag := want.Container.Summary.Image
	if !strings.Contains(ref, "@sha256:") || tag == "" || tag == ref {
		return r.pull(ctx, eng, node, spec, ref, t)
	}
	if err := r.pull(ctx, eng, node, spec, tag, t); err != nil {
		return err
	}
	if _, err := eng.InspectImage(ctx, ref); err == nil {
		return nil
	}
	return r.pull(ctx, eng, node, spec, ref, t)
}

// pull pulls ref, reporting its progress in the store and, at most every
// few seconds, in the log and to the requests the pass serves.
func (r *NodeReconciler) pull(ctx context.Context, eng Engine, node string, spec *v1.Swarm, ref string, t ticket) error {
	var lastLog = r.clock.Now()
	defer r.store.SetPull(node, nil)
	rep := &pullReporter{r: r, t: t, ref: ref}
	err := eng.PullImage(ctx, ref, engine.PullOptions{
		StallTimeout: spec.PullStallTimeout.D(),
		Progress: func(p engine.PullProgress) {
			rep.progress(p)
			now := r.clock.Now()
			r.store.SetPull(node, &v1.PullProgress{Image: ref, Current: p.Current, Total: p.Total, Status: p.Status, UpdatedAt: now})
			if now.Sub(lastLog) >= pullLogEvery {
				lastLog = now
				r.log.Info("pulling image", "node", node, "image", ref, "bytes", p.Current, "total", p.Total, "status", p.Status)
			}
		},
	})
	if err == nil {
		r.reportPulled(ctx, eng, t, ref, rep.last.Status)
		r.event(node, v1.EventNormal, v1.ReasonPulled, "image %s pulled (%s)", ref, pulledWhat(rep))
	}
	return err
}
