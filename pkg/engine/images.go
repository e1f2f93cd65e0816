package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/errdefs/pkg/errhttp"
	"github.com/moby/moby/client"
)

// Image is what the reconciler needs to know about a local image.
type Image struct {
	ID          string
	RepoTags    []string
	RepoDigests []string
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
		return nil
	})
	return out, err
}

// PullImage has the engine pull ref (a tag defaults to "latest") from its
// registry, and returns once the engine reports the pull finished. It
// reads the whole progress stream: an error reported in the stream (for
// instance the registry refusing or not answering) is returned as a
// *PullError. It may take ten times the per-call timeout.
func (c *Client) PullImage(ctx context.Context, ref string) error {
	return c.do(ctx, pullTimeoutFactor*c.timeout, "pull image "+ref, func(callCtx context.Context) error {
		resp, err := c.api.ImagePull(callCtx, ref, client.ImagePullOptions{})
		if err != nil {
			return err
		}
		defer resp.Close()
		// Closing the stream when the call's context ends unblocks a read
		// waiting on a stalled pull.
		stop := context.AfterFunc(callCtx, func() { _ = resp.Close() })
		defer stop()
		status, err := readPullStream(resp)
		if err != nil {
			if ctx.Err() == nil && callCtx.Err() != nil {
				return &TimeoutError{After: pullTimeoutFactor * c.timeout, Answered: true, Err: callCtx.Err()}
			}
			return err
		}
		c.log.V(1).Info("image pulled", "image", ref, "status", status)
		return nil
	})
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

// pullMessage is one object of the engine's pull progress stream. Engines
// write a failure both as errorDetail and (older API versions) as error.
type pullMessage struct {
	Status      string `json:"status"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readPullStream reads a pull's JSON progress stream to its end. It
// returns the last status line (e.g. "Status: Image is up to date for
// x:latest"), or the first error the stream reports as a *PullError, or
// the error that kept it from being read.
func readPullStream(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	var last string
	for {
		var m pullMessage
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return last, nil
		}
		if err != nil {
			return last, fmt.Errorf("reading pull progress: %w", err)
		}
		if m.ErrorDetail != nil || m.Error != "" {
			pe := &PullError{Message: m.Error}
			if d := m.ErrorDetail; d != nil {
				pe.Code = d.Code
				if d.Message != "" {
					pe.Message = d.Message
				}
			}
			if strings.TrimSpace(pe.Message) == "" {
				pe.Message = "pull failed (the engine gave no message)"
			}
			return last, pe
		}
		if m.Status != "" {
			last = m.Status
			if m.ID != "" {
				last = m.ID + ": " + m.Status
			}
		}
	}
}
