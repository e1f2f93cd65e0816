package controllers

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// What a node's reads cost. While the node's event stream is up (Feeds),
// a pass reads one container list and keeps the rest of what the last
// pass read: a container's inspect while the list shows it unchanged
// (same name, state, image and spec hash) and no event about a container
// of the node came; a volume or the image while it exists and no event
// about volumes or images came. Nothing is pinged: the stream and the
// list answering say that the node and its engine are there. A list that
// fails has the pass ping and read everything, as a pass does while the
// stream is down, and so does the pass after the node's camera connection
// was lost (NodeController.SetCamera: the address went quiet) or for an
// operator's request. Whatever fliswarm does to the node drops what was
// kept.

// quickLookTimeout bounds the one list of a node whose stream is up: an
// engine that does not answer it in this time is probed (pings) at once,
// rather than after the engine's own timeout.
const quickLookTimeout = 3 * time.Second

// readCache is what a node's last reads found.
type readCache struct {
	// ok: the last pass read the node's engine.
	ok      bool
	ctrs    map[string]cachedContainer // by ID
	volumes map[string]cachedVolume    // by name, those that exist
	image   *cachedImage
}

type cachedContainer struct {
	key string
	gen uint64
	c   engine.Container
}

type cachedVolume struct {
	gen uint64
	v   engine.Volume
}

type cachedImage struct {
	ref string
	gen uint64
	img engine.Image
}

// forget drops what was read (ok stays: the engine still answered).
func (c *readCache) forget() { c.ctrs, c.volumes, c.image = nil, nil, nil }

// forgetFor drops what action a may change: the containers for an
// action on containers, everything for the others (pulls, volumes).
func (c *readCache) forgetFor(a v1.ActionType) {
	switch a {
	case ActionStartContainer, ActionUnpauseContainer, ActionCreateContainer, ActionRemoveContainer,
		ActionRecreateContainer, ActionRecordHalt, ActionRestorePrevious:
		c.ctrs = nil
	default:
		c.forget()
	}
}

// listKey is what the container list tells of a container that changes
// when the container does (apart from what its events announce).
func listKey(c engine.Container) string {
	return strings.Join([]string{c.Name, c.State, c.ImageID, c.Labels[render.LabelSpecHash]}, "\x00")
}

// quickLook observes a node whose stream is up and whose last pass read
// its engine: no ping, one list, and inspects only of what changed. It
// reports false (and forgets what was kept) when the node must be
// probed and read in full.
func (r *NodeReconciler) quickLook(ctx context.Context, spec *v1.Swarm, node string, want Desired, st *v1.NodeStatus, mem *nodeMemory) (Engine, Observed, bool) {
	if silent := r.feeds.takeSilent(node); silent || !mem.seen.ok || !r.feeds.Up(node) {
		return nil, Observed{}, false
	}
	eng, err := r.engines.Get(node, spec.EngineConnection(node))
	if err != nil {
		return nil, Observed{}, false
	}
	qctx, cancel := context.WithTimeout(ctx, quickLookTimeout)
	defer cancel()
	have, err := r.inspect(qctx, eng, node, want, st, &mem.seen)
	if err != nil {
		r.log.V(1).Info("quick look failed: probing the node", "node", node, "error", err.Error())
		mem.seen.ok = false
		mem.seen.forget()
		return nil, Observed{}, false
	}
	// The conditions Reachable and EngineReady carry over from the pass
	// that last pinged: nothing since said otherwise.
	st.SetEngineSecurity(spec.EngineConnection(node), r.clock.Now())
	st.Reachable, st.DockerAlive = true, true
	return eng, have, true
}

// readContainers lists the node's containers and inspects those not kept
// from an earlier read (all of them when the stream is down).
func (r *NodeReconciler) readContainers(ctx context.Context, eng Engine, node string, want Desired, seen *readCache, up bool, gen feedGen) ([]engine.Container, error) {
	ctr := want.Container
	brief, err := eng.ListStates(ctx, map[string]string{render.LabelManaged: "true", render.LabelNode: node},
		ctr.Name, ctr.Name+previousSuffix, ctr.Name+haltedSuffix)
	if err != nil {
		return nil, err
	}
	kept := make(map[string]cachedContainer, len(brief))
	out := make([]engine.Container, 0, len(brief))
	for _, b := range brief {
		key := listKey(b)
		if c, ok := seen.ctrs[b.ID]; ok && up && c.gen == gen.containers && c.key == key {
			kept[b.ID] = c
			out = append(out, c.c)
			continue
		}
		full, err := eng.InspectContainer(ctx, b.ID)
		if engine.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		kept[b.ID] = cachedContainer{key: key, gen: gen.containers, c: full}
		out = append(out, full)
	}
	seen.ctrs = nil
	if up {
		seen.ctrs = kept
	}
	slices.SortStableFunc(out, func(a, b engine.Container) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// readVolume inspects volume name unless it is kept.
func readVolume(ctx context.Context, eng Engine, name string, seen *readCache, up bool, gen feedGen) (engine.Volume, error) {
	if c, ok := seen.volumes[name]; ok && up && c.gen == gen.volumes {
		return c.v, nil
	}
	v, err := eng.InspectVolume(ctx, name)
	if seen.volumes == nil {
		seen.volumes = map[string]cachedVolume{}
	}
	delete(seen.volumes, name)
	if err == nil && up {
		seen.volumes[name] = cachedVolume{gen: gen.volumes, v: v}
	}
	return v, err
}

// readImage inspects image ref unless it is kept.
func readImage(ctx context.Context, eng Engine, ref string, seen *readCache, up bool, gen feedGen) (engine.Image, error) {
	if c := seen.image; c != nil && up && c.ref == ref && c.gen == gen.images {
		return c.img, nil
	}
	img, err := eng.InspectImage(ctx, ref)
	seen.image = nil
	if err == nil && up {
		seen.image = &cachedImage{ref: ref, gen: gen.images, img: img}
	}
	return img, err
}
