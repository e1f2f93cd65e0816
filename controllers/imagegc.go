package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
)

// Image garbage collection (image_gc), as the kubelet's: every change of
// image leaves the old one on each node, and the camera computers' disks
// are small. Once a node's camera runs the image the spec asks for and
// answers, and the running image is not the one the last collection ran
// for (a rollout or an image update ended there, or fliswarm started),
// images of the camera's repository beyond image_gc.keep are removed,
// ranked: the running image, the one the node ran before (the image of
// "<container>-previous" while it exists, else the one this daemon saw
// running before), then the newest. Never removed: an image of another
// repository (an image that also carries another repository's name, or
// no name at all, is not the camera's), one any container on the node
// uses, running or stopped (the history records "-previous" and
// "-halted" included), and the engine is never asked to force a removal.
//
// Two repository names are the same repository when their paths are: the
// registry host left out ("10.1.0.1:5000/sdss/flicamera" and
// "sdss/flicamera" are one), as is Docker Hub's implicit "library/".
//
// The engine's disk use (its /system/df for images; df in the running
// camera container for the filesystem of the data root) is read after
// each collection and otherwise at most every diskCheckEvery, at the end
// of a pass: never on every resync. When the filesystem is fuller than
// image_gc.high_percent, a warning is logged and the collection runs at
// that check too.
//
// Everything here runs inside the node's reconcile (afterPass), so the
// work queue's guarantee holds: no image is removed while the same node
// pulls or creates.

// diskCheckEvery is how often a node's engine disk use is read: four
// engine requests (one df exec), a quarter of a request per minute.
const diskCheckEvery = 15 * time.Minute

// fsCheckTimeout bounds the df run in the camera's container.
const fsCheckTimeout = 5 * time.Second

// imageEngine is what the collection needs of an engine beyond Engine.
// *engine.Client satisfies it; an engine that does not is not collected.
type imageEngine interface {
	ListImages(ctx context.Context) ([]engine.LocalImage, error)
	RemoveImage(ctx context.Context, ref string) error
	DiskUsage(ctx context.Context) (engine.DiskUsage, error)
	FilesystemUsage(ctx context.Context, containerID string) (engine.FSUsage, error)
}

// ImageGCMetrics, when the controller's Metrics also implements it,
// counts the images removed and the bytes freed, by node.
type ImageGCMetrics interface {
	ImageRemoved(node string, bytes int64)
}

// gcMemory is what the collection remembers of each node.
type gcMemory struct {
	mu    sync.Mutex
	nodes map[string]*gcNode
}

type gcNode struct {
	// ran is the image the camera ran when the collection last ran,
	// rollback the one it ran before.
	ran, rollback string
	// diskAt is when the disk use was last read; full that the
	// filesystem was then above high_percent.
	diskAt time.Time
	full   bool
}

func (m *gcMemory) node(name string) *gcNode {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[string]*gcNode{}
	}
	n, ok := m.nodes[name]
	if !ok {
		n = &gcNode{}
		m.nodes[name] = n
	}
	return n
}

// afterPass is the collection's part of a pass that observed the node:
// the disk use on its slow timer, and the collection when it is due.
func (r *NodeReconciler) afterPass(ctx context.Context, p *pass) {
	ie, ok := p.eng.(imageEngine)
	if !ok || ctx.Err() != nil || len(p.taken) > 0 {
		return // a pass that acted saw a node that is no more
	}
	g := r.gc.node(p.node)
	now := r.clock.Now()
	checked := false
	if g.diskAt.IsZero() || now.Sub(g.diskAt) >= diskCheckEvery {
		r.checkDisk(ctx, ie, p, g)
		checked = true
	}
	keep := p.spec.ImageGC.GCKeep()
	k := p.keeper
	settled := keep > 0 && p.plan.Empty() && p.mem.starting == nil &&
		k != nil && k.State == "running" && k.ImageID != "" && runsTarget(k, p.want, p.have.Image) &&
		r.store.CameraConnected(p.node)
	if !settled || k.ImageID == g.ran && !(checked && g.full) {
		return
	}
	if k.ImageID != g.ran {
		switch {
		case p.have.Previous != nil && p.have.Previous.ImageID != k.ImageID:
			g.rollback = p.have.Previous.ImageID
		case g.ran != "":
			g.rollback = g.ran
		}
	}
	removed, err := r.collect(ctx, ie, p, keep, k.ImageID, g.rollback)
	if err != nil {
		r.log.Error(err, "image garbage collection", "node", p.node)
		return // tried again at the next pass
	}
	g.ran = k.ImageID
	if removed > 0 {
		r.checkDisk(ctx, ie, p, g)
	}
}

// collect removes the node's images of the camera's repository beyond
// keep (gcVictims), and returns how many it removed. A removal the
// engine refuses is logged and skipped.
func (r *NodeReconciler) collect(ctx context.Context, ie imageEngine, p *pass, keep int, running, rollback string) (int, error) {
	images, err := ie.ListImages(ctx)
	if err != nil {
		return 0, err
	}
	ctrs, err := p.eng.ListContainers(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("%s: list containers: %w", p.node, err)
	}
	inUse := map[string]bool{}
	for _, c := range ctrs {
		inUse[c.ImageID] = true
	}
	repo := repoPath(p.spec.Image)
	removed := 0
	for _, img := range gcVictims(images, repo, inUse, running, rollback, keep) {
		if err := removeImage(ctx, ie, img); err != nil {
			if engine.IsConflict(err) {
				r.log.Info("image kept: the engine refuses to remove it", "node", p.node, "image", short(img.ID), "reason", err.Error())
				continue
			}
			return removed, err
		}
		removed++
		r.event(p.node, v1.EventNormal, v1.ReasonImageRemoved, "image %s (%s) removed, %s freed (image_gc keeps %d)",
			short(img.ID), strings.Join(append(slices.Clone(img.RepoTags), img.RepoDigests...), ", "), v1.HumanBytes(img.Size), keep)
		r.log.Info("image removed", "node", p.node, "image", short(img.ID),
			"tags", strings.Join(append(slices.Clone(img.RepoTags), img.RepoDigests...), ","),
			"size", img.Size, "keep", keep)
		if m, ok := r.opts.Metrics.(ImageGCMetrics); ok {
			m.ImageRemoved(p.node, img.Size)
		}
	}
	return removed, nil
}

// removeImage removes img by ID, without force. An image with several
// tags (all of the camera's repository) is untagged first: the engine
// only removes an image by ID without force when one tag names it.
func removeImage(ctx context.Context, ie imageEngine, img engine.LocalImage) error {
	for _, tag := range img.RepoTags[min(1, len(img.RepoTags)):] {
		if err := ie.RemoveImage(ctx, tag); err != nil {
			return err
		}
	}
	return ie.RemoveImage(ctx, img.ID)
}

// checkDisk reads the engine's disk use into the status, and warns when
// the filesystem is fuller than high_percent.
func (r *NodeReconciler) checkDisk(ctx context.Context, ie imageEngine, p *pass, g *gcNode) {
	g.diskAt = r.clock.Now()
	du, err := ie.DiskUsage(ctx)
	if err != nil {
		r.log.Error(err, "cannot read the engine's disk use", "node", p.node, "retryIn", diskCheckEvery.String())
		return
	}
	d := v1.DiskStatus{Images: du.Images, ImagesSize: du.ImagesSize, ImagesReclaimable: du.ImagesReclaimable, CheckedAt: g.diskAt}
	// The filesystem's size is read only when a threshold asks for it:
	// the API does not tell it, and df runs in the camera's container.
	if k := p.keeper; k != nil && k.State == "running" && p.spec.ImageGC.GCHighPercent() > 0 {
		fctx, cancel := context.WithTimeout(ctx, fsCheckTimeout)
		fs, err := ie.FilesystemUsage(fctx, k.ID)
		cancel()
		if err == nil {
			d.FSSize, d.FSUsed, d.FSPercent = fs.Size, fs.Used, fs.Percent()
		} else if !errors.Is(err, context.Canceled) {
			r.log.V(1).Info("filesystem use not known", "node", p.node, "reason", err.Error())
		}
	}
	high := p.spec.ImageGC.GCHighPercent()
	wasFull := g.full
	g.full = high > 0 && d.FSSize > 0 && d.FSPercent > high
	if g.full && !wasFull {
		r.event(p.node, v1.EventWarning, v1.ReasonDiskNearlyFull, "the engine's data root is %d%% full (image_gc.high_percent %d): old images are collected at each disk check",
			d.FSPercent, high)
	}
	if g.full {
		r.log.Error(nil, "node disk nearly full", "node", p.node, "percent", d.FSPercent, "highPercent", high,
			"images", d.Images, "imagesSize", d.ImagesSize, "reclaimable", d.ImagesReclaimable)
	}
	r.store.SetDisk(p.node, d)
}

// gcVictims returns the images to remove so that keep images of repo
// remain, ranked: running, rollback, then the newest. An image any
// container uses (inUse, by ID) is never one, nor is an image that is
// not repo's (see ofRepo). Pure.
func gcVictims(images []engine.LocalImage, repo string, inUse map[string]bool, running, rollback string, keep int) []engine.LocalImage {
	var ours []engine.LocalImage
	for _, img := range images {
		if ofRepo(img, repo) {
			ours = append(ours, img)
		}
	}
	rank := func(img engine.LocalImage) int {
		switch img.ID {
		case running:
			return 0
		case rollback:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(ours, func(a, b engine.LocalImage) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), b.Created.Compare(a.Created))
	})
	var out []engine.LocalImage
	for i, img := range ours {
		if i >= keep && !inUse[img.ID] && img.ID != running {
			out = append(out, img)
		}
	}
	return out
}

// ofRepo reports whether every name of img (tags and digests) is of the
// repository whose path is repo; an image without names is nobody's.
func ofRepo(img engine.LocalImage, repo string) bool {
	refs := append(slices.Clone(img.RepoTags), img.RepoDigests...)
	for _, ref := range refs {
		if repoPath(ref) != repo {
			return false
		}
	}
	return len(refs) > 0
}

// repoPath is the repository path of an image reference: without its
// digest, tag and registry host (a first component with a dot or a colon,
// or "localhost", as Docker reads it), and without Docker Hub's implicit
// "library/".
func repoPath(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		name = rest
	}
	return strings.TrimPrefix(name, "library/")
}
