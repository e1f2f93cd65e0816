package controllers

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/ping"
	"github.com/sdss/fliswarm/pkg/render"
)

// This file is the observe step: what a node has, read from the node and
// its engine, recorded in a status. Nothing here changes a node.

// desired renders what node should have under spec.
func desired(spec *v1.Swarm, node string) (Desired, error) {
	ctr, err := render.ForNode(spec, node)
	if err != nil {
		return Desired{}, err
	}
	return Desired{Container: ctr, Volumes: render.Volumes(spec), PullPolicy: spec.PullPolicy}, nil
}

// newStatus starts a node's status for a new observation, keeping the
// previous conditions so that their transition times carry over.
func newStatus(prev v1.NodeStatus, seen bool, spec *v1.Swarm, node, revision string, now time.Time) *v1.NodeStatus {
	n := spec.Nodes[node]
	st := &v1.NodeStatus{}
	if seen {
		st.Conditions = prev.Conditions
		st.Restarts = prev.Restarts
	}
	st.Name, st.Host, st.DockerHost = node, n.Host, n.DockerClient
	st.ObservedRevision, st.ObservedAt = revision, now
	st.Image.Ref = spec.ImageRef()
	st.Image.LatestDigest = spec.ImageDigest
	return st
}

func defaultPing(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error {
	return ping.Host(ctx, host, timeout, fallbackPort)
}

// probeNode checks, concurrently, that the node answers ping and its engine
// answers /_ping, and records both. It returns the engine, or an error
// worded as the original's for a node that is down.
func (r *NodeReconciler) probeNode(ctx context.Context, spec *v1.Swarm, node string, st *v1.NodeStatus) (Engine, error) {
	n := spec.Nodes[node]
	now := r.clock.Now()
	st.SetEngineSecurity(spec.EngineConnection(node), now)
	eng, err := r.engines.Get(node, spec.EngineConnection(node))
	if err != nil {
		st.SetCondition(v1.ConditionEngineReady, false, "EngineAddressInvalid", err.Error(), now)
		return nil, fmt.Errorf("%s: engine %s: %w", node, n.DockerClient, err)
	}
	var pingErr, engErr error
	var wg sync.WaitGroup
	wg.Go(func() { pingErr = r.opts.Ping(ctx, n.Host, spec.PingTimeout.D(), fallbackPort(n)) })
	wg.Go(func() { engErr = eng.Ping(ctx) })
	wg.Wait()
	st.Reachable, st.DockerAlive = pingErr == nil, engErr == nil
	if pingErr != nil {
		st.SetCondition(v1.ConditionReachable, false, "NoPingReply", fmt.Sprintf("Node %s is not pinging back: %v", n.Host, pingErr), now)
	} else {
		st.SetCondition(v1.ConditionReachable, true, "PingReply", "node answers ping", now)
	}
	if engErr != nil {
		st.SetCondition(v1.ConditionEngineReady, false, "EngineUnreachable", fmt.Sprintf("Docker Engine %s is not answering: %v", n.DockerClient, engErr), now)
	} else {
		st.SetCondition(v1.ConditionEngineReady, true, "EngineAnswers", "engine answers /_ping", now)
	}
	switch {
	case pingErr != nil && engErr != nil:
		return nil, fmt.Errorf("Node %s is not pinging back and its Docker client is not connected: %w", n.Host, engErr)
	case engErr != nil:
		return nil, fmt.Errorf("Docker client on node %s is not connected: %w", n.Host, engErr)
	}
	return eng, nil
}

// inspect reads the node's containers, volumes and image and records them
// in st. With seen (the node's reconciles' own, never shared), while the
// node's stream is up, what did not change is not read again (see
// observecache.go); nil reads everything.
func (r *NodeReconciler) inspect(ctx context.Context, eng Engine, node string, want Desired, st *v1.NodeStatus, seen *readCache) (Observed, error) {
	ctr := want.Container
	have := Observed{Volumes: map[string]engine.Volume{}}
	up, gen := r.feeds.State(node)
	if seen == nil {
		seen, up = &readCache{}, false
	}
	if !up {
		seen.forget()
	}
	all, err := r.readContainers(ctx, eng, node, want, seen, up, gen)
	if err != nil {
		return have, fmt.Errorf("%s: list containers: %w", node, err)
	}
	have.Containers, have.Previous, have.Halted = splitHistory(all, ctr.Name)
	st.Volumes = st.Volumes[:0]
	for _, v := range want.Volumes {
		got, err := readVolume(ctx, eng, v.Name, seen, up, gen)
		switch {
		case engine.IsNotFound(err):
			st.Volumes = append(st.Volumes, v1.VolumeStatus{Name: v.Name})
		case err != nil:
			return have, fmt.Errorf("%s: inspect volume %s: %w", node, v.Name, err)
		default:
			have.Volumes[v.Name] = got
			st.Volumes = append(st.Volumes, v1.VolumeStatus{Name: v.Name, Exists: true, Device: got.Options["device"]})
		}
	}
	img, err := readImage(ctx, eng, ctr.Config.Image, seen, up, gen)
	switch {
	case engine.IsNotFound(err):
		st.Image.Present, st.Image.ID = false, ""
	case err != nil:
		return have, fmt.Errorf("%s: inspect image %s: %w", node, ctr.Config.Image, err)
	default:
		have.Image = &img
		st.Image.Present, st.Image.ID = true, img.ID
	}
	r.adopt(ctx, eng, node, want, &have)
	recordObserved(st, want, have, r.clock.Now())
	r.observeDigest(ctx, eng, want, have, st)
	return have, nil
}

// adopt looks at the container named as the spec names it when fliswarm
// did not create it: have.OwnImage is the image it runs and, when it runs
// what the spec asks for (adoptDiff), it is adopted: its observed labels
// get the spec's hash, so that planning, readiness and rollouts treat it
// as a camera fliswarm created from this spec. Adopting is logged once per
// container.
func (r *NodeReconciler) adopt(ctx context.Context, eng Engine, node string, want Desired, have *Observed) {
	k := keeperOf(want, *have)
	if k == nil {
		return
	}
	if _, labelled := k.Labels[render.LabelSpecHash]; labelled {
		return
	}
	if have.Image != nil && k.ImageID == have.Image.ID {
		have.OwnImage = have.Image
	} else if img, err := eng.InspectImage(ctx, k.ImageID); err == nil {
		have.OwnImage = &img
	}
	if len(adoptDiff(want.Container, *k, have.Image, have.OwnImage)) > 0 {
		return
	}
	k.Labels = maps.Clone(k.Labels)
	if k.Labels == nil {
		k.Labels = map[string]string{}
	}
	k.Labels[render.LabelSpecHash] = want.Container.Hash
	have.Adopted = k.ID
	if mem := r.memory(node); mem.adopted != k.ID {
		mem.adopted = k.ID
		r.log.Info("adopted", "node", node, "container", short(k.ID), "name", k.Name, "image", k.Image,
			"state", k.State, "autoRemove", k.AutoRemove)
		r.event(node, v1.EventNormal, v1.ReasonAdopted, "container %s (%s, %s) adopted: it runs what the configuration asks",
			k.Name, short(k.ID), k.State)
	}
}

// keeperOf is the container named as the spec names it, nil when none.
func keeperOf(want Desired, have Observed) *engine.Container {
	for i := range have.Containers {
		if have.Containers[i].Name == want.Container.Name {
			return &have.Containers[i]
		}
	}
	return nil
}

// recordObserved fills the status fields and conditions that follow from
// an observation.
func recordObserved(st *v1.NodeStatus, want Desired, have Observed, now time.Time) {
	missing := ""
	for _, v := range st.Volumes {
		if !v.Exists {
			missing = v.Name
			break
		}
	}
	if missing != "" {
		st.SetCondition(v1.ConditionVolumesReady, false, "VolumeMissing", "volume "+missing+" does not exist", now)
	} else {
		st.SetCondition(v1.ConditionVolumesReady, true, "VolumesExist", "every volume exists", now)
	}
	if have.Image == nil {
		if c := st.Condition(v1.ConditionImageReady); c == nil || c.Reason != v1.ReasonPullFailed {
			st.SetCondition(v1.ConditionImageReady, false, "ImageNotPresent", "image "+st.Image.Ref+" is not on the node", now)
		}
	} else {
		st.SetCondition(v1.ConditionImageReady, true, "ImagePresent", "image "+st.Image.Ref+" is on the node", now)
	}
	st.Container = nil
	keeper := keeperOf(want, have)
	switch {
	case keeper == nil && len(have.Containers) == 0:
		st.SetCondition(v1.ConditionContainerRunning, false, "NoContainer", "no container "+want.Container.Name, now)
	case keeper == nil:
		st.SetCondition(v1.ConditionContainerRunning, false, "StrayContainers", fmt.Sprintf("%d managed containers, none named %s", len(have.Containers), want.Container.Name), now)
	default:
		st.Container = &v1.ContainerStatus{
			ID: keeper.ID, Name: keeper.Name, State: keeper.State, Image: keeper.Image, ImageID: keeper.ImageID,
			SpecHash: keeper.Labels[render.LabelSpecHash], RestartCount: keeper.RestartCount,
			StartedAt: keeper.StartedAt, Count: len(have.Containers),
			Adopted: have.Adopted != "" && have.Adopted == keeper.ID, AutoRemove: keeper.AutoRemove,
		}
		switch {
		case keeper.State == "paused":
			st.SetCondition(v1.ConditionContainerRunning, false, "ContainerPaused", "container "+st.Container.ShortID()+" is paused", now)
		case !keeper.Running:
			st.SetCondition(v1.ConditionContainerRunning, false, "ContainerNotRunning", stoppedReason(*keeper), now)
		case len(have.Containers) > 1:
			st.SetCondition(v1.ConditionContainerRunning, false, "SeveralContainers", fmt.Sprintf("%d containers are running for this node", len(have.Containers)), now)
		case st.Container.SpecHash != want.Container.Hash:
			st.SetCondition(v1.ConditionContainerRunning, true, "SpecChanged", "container "+st.Container.ShortID()+" runs but does not match the spec", now)
		case !runsTarget(keeper, want, have.Image):
			st.SetCondition(v1.ConditionContainerRunning, true, "ImageChanged", "container "+st.Container.ShortID()+" runs but not the image "+want.Container.Config.Image, now)
		case st.Container.Adopted:
			st.SetCondition(v1.ConditionContainerRunning, true, "Running", "container "+st.Container.ShortID()+" (adopted, not created by fliswarm) runs the current spec", now)
		default:
			st.SetCondition(v1.ConditionContainerRunning, true, "Running", "container "+st.Container.ShortID()+" runs the current spec", now)
		}
	}
}

// fallbackPort is the port a TCP reachability check uses when ICMP is not
// permitted: the engine's TCP port, or its ssh port, else the camera's.
func fallbackPort(n v1.Node) int {
	if u, err := url.Parse(n.DockerClient); err == nil && (u.Scheme == "tcp" || u.Scheme == "ssh") {
		if p, err := strconv.Atoi(u.Port()); err == nil {
			return p
		}
		if u.Scheme == "ssh" {
			return 22
		}
	}
	return n.Port
}
