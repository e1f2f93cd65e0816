package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/sdss/fliswarm/pkg/engine"
)

// The fake engine's images as image garbage collection sees them: the
// fake stores an image under each of its names (e.images: "repo:tag",
// "repo@sha256:…"), so an image's names are the keys naming its ID, and
// a tag pulled again moves to the new image as on a real engine.

type fakeImageMeta struct {
	created time.Time
	size    int64
}

// fakeImageSize is the size of an image the fake pulled.
const fakeImageSize = 100 << 20

// storedLocked records when image id was first stored (size 0: the
// default); e.mu held.
func (e *fakeEngine) storedLocked(id string, size int64) {
	if e.imageMeta == nil {
		e.imageMeta = map[string]fakeImageMeta{}
	}
	if _, ok := e.imageMeta[id]; !ok {
		e.imageMeta[id] = fakeImageMeta{created: e.w.stamp(), size: cmpOr(size, fakeImageSize)}
	}
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

// addImage stores an image under refs, as a `docker pull` or `docker
// tag` of another repository would (a test's bystander).
func (e *fakeEngine) addImage(id string, size int64, refs ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range refs {
		e.images[r] = engine.Image{ID: id}
	}
	e.storedLocked(id, size)
}

// namesLocked are the names of image id, tags first; e.mu held.
func (e *fakeEngine) namesLocked(id string) (tags, digests []string) {
	for ref, img := range e.images {
		if img.ID != id {
			continue
		}
		if strings.Contains(ref, "@") {
			digests = append(digests, ref)
		} else {
			tags = append(tags, ref)
		}
	}
	slices.Sort(tags)
	slices.Sort(digests)
	return tags, digests
}

// imageIDs are the IDs of every stored image, sorted.
func (e *fakeEngine) imageIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var ids []string
	for _, img := range e.images {
		if !slices.Contains(ids, img.ID) {
			ids = append(ids, img.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func (e *fakeEngine) ListImages(ctx context.Context) ([]engine.LocalImage, error) {
	if err := e.enter(ctx, "ListImages"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.LocalImage
	for _, id := range e.idsLocked() {
		tags, digests := e.namesLocked(id)
		m := e.imageMeta[id]
		out = append(out, engine.LocalImage{ID: id, RepoTags: tags, RepoDigests: digests, Created: m.created, Size: m.size})
	}
	slices.SortStableFunc(out, func(a, b engine.LocalImage) int { return b.Created.Compare(a.Created) })
	return out, nil
}

func (e *fakeEngine) idsLocked() []string {
	var ids []string
	for _, img := range e.images {
		if !slices.Contains(ids, img.ID) {
			ids = append(ids, img.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// RemoveImage behaves as the engine's DELETE /images/{ref} without
// force: a name that is one of several names of its image is untagged;
// otherwise the image goes, unless a container uses it (409, "image is
// being used by running/stopped container") or, asked by ID, it has
// several tags (409, "image is referenced in multiple repositories").
func (e *fakeEngine) RemoveImage(ctx context.Context, ref string) error {
	if err := e.enter(ctx, "RemoveImage"); err != nil {
		return err
	}
	e.mu.Lock()
	id := ""
	byName := false
	if img, ok := e.images[ref]; ok {
		id, byName = img.ID, true
	} else if slices.Contains(e.idsLocked(), ref) {
		id = ref
	}
	if id == "" {
		e.mu.Unlock()
		return notFound("image", ref)
	}
	tags, digests := e.namesLocked(id)
	if byName && len(tags)+len(digests) > 1 && !strings.Contains(ref, "@") && len(tags) > 1 {
		delete(e.images, ref)
		e.changed("untag-image", ref, engine.Event{Type: "image", Action: "untag", ID: id, Name: ref})
		return nil
	}
	for _, c := range e.containers {
		if c.ImageID == id {
			how, state := "must", "stopped"
			if c.Running {
				how, state = "cannot", "running"
			}
			e.mu.Unlock()
			return fmt.Errorf("conflict: unable to delete %s (%s be forced) - image is being used by %s container %s: %w",
				short(id), how, state, short(c.ID), cerrdefs.ErrConflict)
		}
	}
	if !byName && len(tags) > 1 {
		e.mu.Unlock()
		return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w",
			short(id), cerrdefs.ErrConflict)
	}
	for r, img := range e.images {
		if img.ID == id {
			delete(e.images, r)
		}
	}
	delete(e.imageMeta, id)
	e.changed("remove-image", short(id), engine.Event{Type: "image", Action: "delete", ID: id})
	return nil
}

// setFS sets what df reports in the node's containers (zero: df fails).
func (e *fakeEngine) setFS(fs engine.FSUsage) {
	e.mu.Lock()
	e.fs = fs
	e.mu.Unlock()
}

func (e *fakeEngine) DiskUsage(ctx context.Context) (engine.DiskUsage, error) {
	if err := e.enter(ctx, "DiskUsage"); err != nil {
		return engine.DiskUsage{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	used := map[string]bool{}
	for _, c := range e.containers {
		used[c.ImageID] = true
	}
	var du engine.DiskUsage
	for _, id := range e.idsLocked() {
		du.Images++
		du.ImagesSize += e.imageMeta[id].size
		if !used[id] {
			du.ImagesReclaimable += e.imageMeta[id].size
		}
	}
	return du, nil
}

func (e *fakeEngine) FilesystemUsage(ctx context.Context, id string) (engine.FSUsage, error) {
	if err := e.enter(ctx, "FilesystemUsage"); err != nil {
		return engine.FSUsage{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	switch {
	case c == nil:
		return engine.FSUsage{}, notFound("container", id)
	case !c.Running:
		return engine.FSUsage{}, fmt.Errorf("container %s is not running: %w", short(id), cerrdefs.ErrConflict)
	case e.fs == engine.FSUsage{}:
		return engine.FSUsage{}, fmt.Errorf(`exec: "df": executable file not found in $PATH`)
	}
	return e.fs, nil
}
