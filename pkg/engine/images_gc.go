package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// What image garbage collection needs of an engine: the local images, the
// removal of one, and how much disk the engine uses.

// LocalImage is one image stored by the engine, as its image list gives
// it.
type LocalImage struct {
	ID string
	// RepoTags ("repo:tag") and RepoDigests ("repo@sha256:…") name it; an
	// image whose tag moved to another image keeps only its digests.
	RepoTags    []string
	RepoDigests []string
	// Created is when the image was built.
	Created time.Time
	// Size is the image's size on disk in bytes, its layers shared with
	// other images included.
	Size int64
}

// ListImages returns every image the engine stores (intermediate layers
// aside), newest first.
func (c *Client) ListImages(ctx context.Context) ([]LocalImage, error) {
	var out []LocalImage
	err := c.do(ctx, c.timeout, "list images", func(ctx context.Context) error {
		res, err := c.api.ImageList(ctx, client.ImageListOptions{})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			out = append(out, LocalImage{
				ID: s.ID, RepoTags: realRefs(s.RepoTags), RepoDigests: realRefs(s.RepoDigests),
				Created: time.Unix(s.Created, 0).UTC(), Size: s.Size,
			})
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b LocalImage) int { return b.Created.Compare(a.Created) })
	return out, err
}

// realRefs drops the placeholders older engines give an untagged image
// ("<none>:<none>", "<none>@<none>").
func realRefs(refs []string) []string {
	var out []string
	for _, r := range refs {
		if !strings.HasPrefix(r, "<none>") {
			out = append(out, r)
		}
	}
	return out
}

// RemoveImage removes the image id (an image ID, not a name: every tag of
// it goes) without force, so that the engine refuses to remove one a
// container uses, running or stopped, or one tagged in several
// repositories: that refusal satisfies IsConflict. An image that does not
// exist is not an error.
func (c *Client) RemoveImage(ctx context.Context, id string) error {
	err := c.do(ctx, c.timeout, "remove image "+shortImageID(id), func(ctx context.Context) error {
		_, err := c.api.ImageRemove(ctx, id, client.ImageRemoveOptions{PruneChildren: true})
		return err
	})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// shortImageID is "sha256:" and 12 hex digits, as `docker images` shows.
func shortImageID(id string) string {
	hex := strings.TrimPrefix(id, "sha256:")
	return hex[:min(12, len(hex))]
}

// DiskUsage is how much disk an engine's images take.
type DiskUsage struct {
	// Images counts the images; ImagesSize is their size on disk in
	// bytes (shared layers counted once) and ImagesReclaimable what
	// removing every image no container uses would free.
	Images            int
	ImagesSize        int64
	ImagesReclaimable int64
}

// DiskUsage asks the engine how much disk its images take (its
// /system/df, images only: the engine computes it from its layer store,
// which takes a while on a full disk, so callers ask seldom).
func (c *Client) DiskUsage(ctx context.Context) (DiskUsage, error) {
	var out DiskUsage
	err := c.do(ctx, c.timeout, "disk usage", func(ctx context.Context) error {
		res, err := c.api.DiskUsage(ctx, client.DiskUsageOptions{Images: true})
		if err != nil {
			return err
		}
		out = DiskUsage{Images: int(res.Images.TotalCount), ImagesSize: res.Images.TotalSize, ImagesReclaimable: res.Images.Reclaimable}
		return nil
	})
	return out, err
}

// FSUsage is a filesystem's size and use, in bytes.
type FSUsage struct {
	Size, Used, Available int64
}

// Percent is the share of the filesystem in use as df computes it
// (used / (used + available), rounded up: the blocks reserved for root
// do not count as free).
func (u FSUsage) Percent() int {
	total := u.Used + u.Available
	if total <= 0 {
		return 0
	}
	return int((u.Used*100 + total - 1) / total)
}

// maxExecOutput bounds what FilesystemUsage reads.
const maxExecOutput = 16 << 10

// FilesystemUsage runs `df -Pk /` in the running container id and returns
// what it reports of the container's root filesystem: an overlay on the
// engine's data root, whose size and use are the data root's
// filesystem's. An image without df (or a container not running) gives
// an error.
func (c *Client) FilesystemUsage(ctx context.Context, id string) (FSUsage, error) {
	var out FSUsage
	err := c.do(ctx, c.timeout, "df in container "+shortID(id), func(ctx context.Context) error {
		ex, err := c.api.ExecCreate(ctx, id, client.ExecCreateOptions{
			Cmd: []string{"df", "-Pk", "/"}, AttachStdout: true, AttachStderr: true,
		})
		if err != nil {
			return err
		}
		att, err := c.api.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			return err
		}
		defer att.Close()
		// The attached stream is a hijacked connection, which ctx does
		// not end: close it when ctx ends (a camera paused while df runs
		// would otherwise hold the call, and the node's reconcile,
		// until it is unpaused).
		stop := context.AfterFunc(ctx, func() { att.Close() })
		defer stop()
		var stdout, stderr bytes.Buffer
		if _, err := stdcopy.StdCopy(&stdout, &stderr, io.LimitReader(att.Reader, maxExecOutput)); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("df did not end in time (a paused camera, a hung filesystem?): %w", ctx.Err())
			}
			return err
		}
		res, err := c.api.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return err
		}
		if res.ExitCode == 126 || res.ExitCode == 127 {
			return fmt.Errorf("no df in the container's image (exit code %d)", res.ExitCode)
		}
		if res.Running || res.ExitCode != 0 {
			return fmt.Errorf("df exited with code %d: %s", res.ExitCode, strings.TrimSpace(stderr.String()))
		}
		out, err = ParseDF(stdout.String())
		return err
	})
	return out, err
}

// ParseDF reads the output of `df -Pk PATH` (POSIX format, 1024-byte
// blocks): a header line, then one line for the filesystem.
func ParseDF(s string) (FSUsage, error) {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "Filesystem") {
		return FSUsage{}, fmt.Errorf("df printed %q, not the POSIX format", s)
	}
	// The filesystem name may hold spaces: count fields from the end
	// (blocks, used, available, capacity, mount point).
	f := strings.Fields(lines[len(lines)-1])
	if len(f) < 6 {
		return FSUsage{}, fmt.Errorf("df line %q has %d fields, want 6", lines[len(lines)-1], len(f))
	}
	f = f[len(f)-5:]
	var kb [3]int64
	for i := range kb {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return FSUsage{}, fmt.Errorf("df line %q: %q is not a block count", lines[len(lines)-1], f[i])
		}
		kb[i] = n
	}
	return FSUsage{Size: kb[0] << 10, Used: kb[1] << 10, Available: kb[2] << 10}, nil
}
