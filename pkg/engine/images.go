package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs/pkg/errhttp"
	"github.com/moby/moby/client"
)

// Image is what the reconciler needs to know about a local image.
type Image struct {
	ID          string
	RepoTags    []string
	RepoDigests []string
	// Env, User and Volumes (the VOLUME targets) of the image's config:
	// a container created from it carries them unless told otherwise.
	Env     []string
	User    string
	Volumes []string
}

// InspectImage returns the local image ref names (a name[:tag], a
// name@digest or an ID). An image not present gives an error satisfying
// IsNotFound.
func (c *Client) InspectImage(ctx context.Context, ref string) (Image, error) {
	var out Image
	err := c.do(ctx, c.timeout, "inspect image "+ref, func(ctx context.Context) error {
		res, err := c.api.ImageInspect(ctx, ref)
		if err != nil {
			return err
		}
		out = Image{ID: res.ID, RepoTags: res.RepoTags, RepoDigests: res.RepoDigests}
		if cfg := res.Config; cfg != nil {
			out.Env, out.User = cfg.Env, cfg.User
			for v := range cfg.Volumes {
				out.Volumes = append(out.Volumes, v)
			}
			slices.Sort(out.Volumes)
		}
		return nil
	})
	return out, err
}

// PullOptions tune PullImage.
type PullOptions struct {
	// StallTimeout ends the pull when the engine reports nothing for this
	// long. A slow pull that keeps making progress is never cut off.
	// Default 60 s.
	StallTimeout time.Duration
	// Progress, when set, is called with the pull's progress as the engine
	// reports it.
	Progress func(PullProgress)
	// RegistryAuth is the encoded registry credentials
	// (EncodeRegistryAuth); "" uses the client's Options.RegistryAuth, if
	// any, else pulls anonymously. Never logged.
	RegistryAuth string
}

// PullProgress is a pull's progress: bytes over every layer the engine has
// reported so far, and its last status line.
type PullProgress struct {
	Current, Total int64
	Status         string
}

// DefaultPullStall is PullOptions.StallTimeout's default.
const DefaultPullStall = 60 * time.Second

// PullImage has the engine pull ref (a tag defaults to "latest") from its
// registry, and returns once the engine reports the pull finished. It
// reads the whole progress stream with the SDK's decoder: an error
// reported in the stream (for instance the registry refusing or not
// answering) is returned as a *PullError. There is no limit on the whole
// pull, only on the time without progress (opts.StallTimeout), which
// gives a *StallError.
func (c *Client) PullImage(ctx context.Context, ref string, opts PullOptions) error {
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultPullStall
	}
	op := "pull image " + ref
	pullCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(opts.StallTimeout, func() {
		cancel(&StallError{After: opts.StallTimeout})
	})
	defer stall.Stop()

	auth := opts.RegistryAuth
	if auth == "" && c.auth != nil {
		var err error
		if auth, err = c.auth(); err != nil {
			return fmt.Errorf("%s: %s: %w", c.node, op, err)
		}
	}
	resp, err := c.api.ImagePull(pullCtx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return c.pullErr(ctx, pullCtx, op, err)
	}
	defer resp.Close()
	layers := map[string]PullProgress{}
	var last string
	for m, err := range resp.JSONMessages(pullCtx) {
		if err != nil {
			return c.pullErr(ctx, pullCtx, op, fmt.Errorf("reading pull progress: %w", err))
		}
		stall.Reset(opts.StallTimeout)
		if m.Error != nil {
			pe := &PullError{Code: m.Error.Code, Message: m.Error.Message}
			if strings.TrimSpace(pe.Message) == "" {
				pe.Message = "pull failed (the engine gave no message)"
			}
			return fmt.Errorf("%s: %s: %w", c.node, op, pe)
		}
		if m.Status != "" {
			last = m.Status
			if m.ID != "" {
				last = m.ID + ": " + m.Status
			}
		}
		if m.ID != "" && m.Progress != nil && m.Progress.Total > 0 {
			layers[m.ID] = PullProgress{Current: m.Progress.Current, Total: m.Progress.Total}
		}
		if opts.Progress != nil {
			p := PullProgress{Status: last}
			for _, l := range layers {
				p.Current += l.Current
				p.Total += l.Total
			}
			opts.Progress(p)
		}
	}
	if cause := context.Cause(pullCtx); cause != nil {
		return c.pullErr(ctx, pullCtx, op, cause)
	}
	c.log.V(1).Info("image pulled", "image", ref, "status", last)
	return nil
}

// pullErr wraps a pull's error, naming a stall as the cause when the
// stall timer ended it.
func (c *Client) pullErr(ctx, pullCtx context.Context, op string, err error) error {
	if se, ok := errors.AsType[*StallError](context.Cause(pullCtx)); ok && ctx.Err() == nil {
		err = se
	}
	return fmt.Errorf("%s: %s: %w", c.node, op, err)
}

// StallError ends a pull that made no progress for After.
type StallError struct{ After time.Duration }

func (e *StallError) Error() string {
	return fmt.Sprintf("no progress for %s", e.After)
}

// PullError is an error the engine reported in a pull's progress stream.
type PullError struct {
	// Code is the HTTP status the engine attached (often 0: none).
	Code    int
	Message string
}

func (e *PullError) Error() string { return e.Message }

// Is maps the engine's code, when there is one, onto the errdefs classes
// (so a 404 satisfies IsNotFound).
func (e *PullError) Is(target error) bool {
	if e.Code == 0 {
		return false
	}
	native := errhttp.ToNative(e.Code)
	return native != nil && errors.Is(native, target)
}
