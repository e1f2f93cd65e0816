package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Image updates (image_update_interval): a source, like the resync, that
// asks the registry every interval which digest the image's tag names.
// A new digest is pinned into the spec in force (Swarm.ImageDigest, with
// the revision "<config revision>@sha256:<12 hex>"), so that it flows
// through SetSpec, the plan and the rollout gates exactly as a
// configuration change does: every node pre-pulls, a busy camera is
// waited for, at most max_unavailable cameras are down, and a camera of
// the new image that does not answer halts the rollout and goes back to
// the camera it replaced, kept stopped on the node (history.go), so the
// image the tag named before, not the one it names now.
//
// The spec hash leaves the digest out: pinning the digest a node already
// runs changes nothing; which image a container runs is told by its image
// ID (containerDiff).

// imageCheckTimeout bounds one ask to the registry.
const imageCheckTimeout = 30 * time.Second

// pin is a digest read from the registry for ref.
type pin struct{ ref, digest string }

// pinned is spec with p's digest pinned, and its revision; spec itself
// when image updates are off or p is for another image.
func pinned(spec *v1.Swarm, rev string, p pin) (*v1.Swarm, string) {
	if spec.ImageUpdateInterval <= 0 || p.digest == "" || p.ref != spec.ImageRef() {
		return spec, rev
	}
	return withDigest(spec, p.digest), rev + "@" + shortDigest(p.digest)
}

func withDigest(spec *v1.Swarm, digest string) *v1.Swarm {
	cp := *spec
	cp.ImageDigest = digest
	return &cp
}

func shortDigest(d string) string {
	hex := strings.TrimPrefix(d, "sha256:")
	return "sha256:" + hex[:min(12, len(hex))]
}

// watchImage is the image-update source: it reads the tag's digest at
// once and then every image_update_interval (read afresh each time; a
// configuration change that turns updates on or changes the image asks at
// once). A registry that does not answer is logged and asked again the
// next interval; the cameras are left as they are.
func (c *NodeController) watchImage(ctx context.Context) {
	for {
		spec, _ := c.store.Spec()
		every := spec.ImageUpdateInterval.D()
		if every > 0 {
			c.checkImage(ctx, spec)
		}
		tick := make(chan struct{})
		var t Timer
		if every > 0 {
			t = c.opts.Clock.AfterFunc(every, func() { close(tick) })
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return
		case <-tick:
		case <-c.imageKick:
			if t != nil {
				t.Stop()
			}
		}
	}
}

// checkImage asks the registry once and pins what it says.
func (c *NodeController) checkImage(ctx context.Context, spec *v1.Swarm) {
	ref := spec.ImageRef()
	digest, node, err := c.registryDigest(ctx, spec, ref)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.log.Error(err, "cannot read the image's digest from the registry; the cameras are left as they are",
			"image", ref, "retryIn", spec.ImageUpdateInterval.D().String())
		c.store.SetRegistryError(err.Error())
		return
	}
	c.store.SetRegistryError("")
	c.specMu.Lock()
	defer c.specMu.Unlock()
	if c.configSpec.ImageRef() != ref || c.pin == (pin{ref, digest}) {
		return
	}
	old := c.pin
	c.pin = pin{ref, digest}
	eff, rev := pinned(c.configSpec, c.configRev, c.pin)
	if old.ref == ref && old.digest != "" {
		c.log.Info("image update: the tag names a new image; rolling it out", "image", ref,
			"from", old.digest, "to", digest, "revision", rev, "askedThrough", node)
		if c.opts.Events != nil {
			c.opts.Events.Event("", v1.EventNormal, v1.ReasonImageUpdated,
				fmt.Sprintf("%s names a new image (%s, was %s): rolling out revision %s", ref, digest, old.digest, rev))
		}
	} else {
		c.log.Info("image digest pinned", "image", ref, "digest", digest, "revision", rev, "askedThrough", node)
	}
	c.applyLocked(eff, rev)
}

// registryDigest asks the registry through the engine of the first
// enabled node whose engine answers: the engine uses its own registry
// settings, as its pulls do. An engine that answers but whose registry
// does not is the answer (the others share the registry).
func (c *NodeController) registryDigest(ctx context.Context, spec *v1.Swarm, ref string) (digest, node string, err error) {
	var errs []error
	for _, n := range c.store.Enabled() {
		eng, gerr := c.engines.Get(n, spec.EngineConnection(n))
		if gerr != nil {
			errs = append(errs, gerr)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, imageCheckTimeout)
		digest, err = eng.RegistryDigest(cctx, ref)
		cancel()
		if err == nil {
			return digest, n, nil
		}
		if !engine.IsUnreachable(err) {
			return "", n, err
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return "", "", fmt.Errorf("no enabled node to ask the registry for %s through", ref)
	}
	return "", "", errors.Join(errs...)
}

// sameTarget reports whether a and b render the same container from the
// same image reference.
func sameTarget(a, b Desired) bool {
	return a.Container.Hash == b.Container.Hash && a.Container.Config.Image == b.Container.Config.Image
}

// followsSpec reports whether want is what spec renders for node.
func followsSpec(spec *v1.Swarm, node string, want Desired) bool {
	d, err := desired(spec, node)
	return err == nil && sameTarget(d, want)
}

// runsTarget reports whether container k runs want: its spec hash, and
// the image want names as found on the node (img, nil when absent: a
// pinned image that is absent is not run).
func runsTarget(k *engine.Container, want Desired, img *engine.Image) bool {
	if k == nil || k.Labels[render.LabelSpecHash] != want.Container.Hash {
		return false
	}
	if img == nil {
		return !strings.Contains(want.Container.Config.Image, "@sha256:")
	}
	return k.ImageID == "" || k.ImageID == img.ID
}

// repoDigest is the digest of repo among an image's RepoDigests
// ("repo@sha256:…"), "" when none.
func repoDigest(repoDigests []string, repo string) string {
	for _, rd := range repoDigests {
		name, d, ok := strings.Cut(rd, "@")
		if ok && familiar(name) == familiar(repo) {
			return d
		}
	}
	return ""
}

// familiar drops Docker Hub's implicit prefixes, as the engine does when
// it names an image.
func familiar(name string) string {
	name = strings.TrimPrefix(name, "docker.io/")
	return strings.TrimPrefix(name, "library/")
}

// observeDigest records the registry digest of the image the node's
// container runs and whether an update waits for it.
func (r *NodeReconciler) observeDigest(ctx context.Context, eng Engine, want Desired, have Observed, st *v1.NodeStatus) {
	st.Image.Digest, st.Image.UpdateWaiting = "", false
	k := keeperOf(want, have)
	if k == nil || k.ImageID == "" {
		return
	}
	repo := want.Container.Summary.Image
	if i := strings.LastIndexByte(repo, ':'); i > strings.LastIndexByte(repo, '/') {
		repo = repo[:i]
	}
	_, pinnedDigest, isPinned := strings.Cut(want.Container.Config.Image, "@")
	switch {
	case have.Image != nil && have.Image.ID == k.ImageID && isPinned:
		st.Image.Digest = pinnedDigest
	case have.Image != nil && have.Image.ID == k.ImageID:
		st.Image.Digest = repoDigest(have.Image.RepoDigests, repo)
	case st.Image.LatestDigest != "":
		// Only when image updates are on: one more call, while the
		// container does not run the image wanted.
		if img, err := eng.InspectImage(ctx, k.ImageID); err == nil {
			st.Image.Digest = repoDigest(img.RepoDigests, repo)
		}
	}
	st.Image.UpdateWaiting = st.Image.LatestDigest != "" && st.Image.Digest != st.Image.LatestDigest
}
