package engine

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Container is what the reconciler needs to know about one container.
type Container struct {
	ID string
	// Name without the leading "/".
	Name string
	// Image is the image reference the container was created with
	// (Config.Image), ImageID the ID of the image it runs.
	Image   string
	ImageID string
	// State is the engine's status word: created, running, paused,
	// restarting, removing, exited or dead.
	State   string
	Running bool
	// ExitCode of the last run (0 while running or never started).
	ExitCode int
	// OOMKilled tells that the last run ended because it ran out of memory.
	OOMKilled bool
	// Error is the engine's message for a start that failed ("" if none).
	Error string
	// Pid of the main process while running, else 0.
	Pid int
	// RestartCount counts restarts done by the engine's restart policy.
	RestartCount int
	Labels       map[string]string
	// Created, StartedAt and FinishedAt are zero when they never happened.
	Created    time.Time
	StartedAt  time.Time
	FinishedAt time.Time
	Privileged bool
	// NetworkMode as created ("host", "none", "default", ...).
	NetworkMode string

	// What the container was created with, as the engine reports it (the
	// image's own Env and User merged in): what tells whether a container
	// fliswarm did not create runs what the spec asks for.
	Env  []string
	User string
	// Mounts are every mount, whether asked as -v (a bind) or --mount.
	Mounts []Mount
	// Devices are the device mappings (--device).
	Devices []DeviceMapping
	// CPUPeriod and CPUQuota (µs), NanoCPUs and Memory (bytes): 0 is
	// unset.
	CPUPeriod, CPUQuota, NanoCPUs, Memory int64
	// AutoRemove: the engine removes the container when it exits (--rm).
	AutoRemove bool
	// RestartPolicy is the policy's name ("", "no", "always", ...).
	RestartPolicy string
}

// Mount is one of a container's mounts.
type Mount struct {
	// Type is "volume", "bind", "tmpfs", ...
	Type string
	// Name is a volume's name ("" for a bind).
	Name string
	// Source is a bind's host path (a volume's storage path).
	Source string
	// Target is the path in the container.
	Target string
}

// DeviceMapping is a device given to a container.
type DeviceMapping struct {
	PathOnHost, PathInContainer, CgroupPermissions string
}

// ListContainers returns the containers in any state that carry every one
// of labels, plus those whose name (without the leading "/") is one of
// names; each once, in order of creation (oldest first). With no labels
// only names select; with neither, every container is listed. Each
// container is inspected, so all fields are filled; one removed meanwhile
// is left out.
func (c *Client) ListContainers(ctx context.Context, labels map[string]string, names ...string) ([]Container, error) {
	op := "list containers"
	var out []Container
	err := c.do(ctx, c.timeout, op, func(ctx context.Context) error {
		ids, err := c.listIDs(ctx, labels, names)
		if err != nil {
			return err
		}
		out = make([]Container, 0, len(ids))
		for _, id := range ids {
			res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			if IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("inspect %s: %w", shortID(id), err)
			}
			ctr := fromInspect(res.Container)
			// The engine's name filter is a pattern and its label filter
			// matches what it matched when listing: check again exactly.
			if selected(ctr.Labels, ctr.Name, labels, names) {
				out = append(out, ctr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortContainers(out)
	return out, nil
}

// ListStates is ListContainers in one request: the engine's container
// list, selected the same way, without inspecting anything. Only ID,
// Name, Image, ImageID, State, Running (State is "running") and Labels
// are filled, and Created to the second: enough to tell whether a
// container changed since it was last inspected.
func (c *Client) ListStates(ctx context.Context, labels map[string]string, names ...string) ([]Container, error) {
	var out []Container
	err := c.do(ctx, c.timeout, "list containers", func(ctx context.Context) error {
		res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil {
			return err
		}
		for _, s := range res.Items {
			name := ""
			for _, n := range s.Names {
				// The first name without a slash inside is the
				// container's own; the others are links.
				if n = strings.TrimPrefix(n, "/"); !strings.Contains(n, "/") {
					name = n
					break
				}
			}
			if !selected(s.Labels, name, labels, names) {
				continue
			}
			lb := maps.Clone(s.Labels)
			if lb == nil {
				lb = map[string]string{}
			}
			out = append(out, Container{ID: s.ID, Name: name, Image: s.Image, ImageID: s.ImageID,
				State: string(s.State), Running: s.State == container.StateRunning, Labels: lb,
				Created: time.Unix(s.Created, 0)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortContainers(out)
	return out, nil
}

// listIDs returns the IDs of the containers selected by labels or names
// (see selected). It is one request: a node holds a handful of containers,
// so all of them are listed and selected here, rather than one filtered
// list for the labels and another for the names.
func (c *Client) listIDs(ctx context.Context, labels map[string]string, names []string) ([]string, error) {
	res, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range res.Items {
		if slices.ContainsFunc(s.Names, func(n string) bool { return selected(s.Labels, n, labels, names) }) ||
			len(s.Names) == 0 && selected(s.Labels, "", labels, names) {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// selected tells whether a container with these labels and name is
// selected by the wanted labels (all must be present with equal values)
// or names; with neither wanted, everything is.
func selected(have map[string]string, name string, labels map[string]string, names []string) bool {
	if len(labels) == 0 && len(names) == 0 {
		return true
	}
	name = strings.TrimPrefix(name, "/")
	for _, n := range names {
		if strings.TrimPrefix(n, "/") == name {
			return true
		}
	}
	if len(labels) == 0 {
		return false
	}
	for k, v := range labels {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// sortContainers orders by creation time, then ID for a stable order.
func sortContainers(cs []Container) {
	slices.SortStableFunc(cs, func(a, b Container) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
}

// InspectContainer returns the container with this ID or name. A missing
// one gives an error satisfying IsNotFound.
func (c *Client) InspectContainer(ctx context.Context, id string) (Container, error) {
	var out Container
	err := c.do(ctx, c.timeout, "inspect container "+shortID(id), func(ctx context.Context) error {
		res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		out = fromInspect(res.Container)
		return nil
	})
	return out, err
}

// fromInspect converts the engine's inspect answer. Missing parts (a nil
// State, Config or HostConfig) leave the corresponding fields zero.
func fromInspect(r container.InspectResponse) Container {
	ctr := Container{
		ID:           r.ID,
		Name:         strings.TrimPrefix(r.Name, "/"),
		ImageID:      r.Image,
		RestartCount: r.RestartCount,
		Created:      parseTime(r.Created),
	}
	if r.Config != nil {
		ctr.Image = r.Config.Image
		ctr.Labels = maps.Clone(r.Config.Labels)
		ctr.Env = slices.Clone(r.Config.Env)
		ctr.User = r.Config.User
	}
	for _, m := range r.Mounts {
		ctr.Mounts = append(ctr.Mounts, Mount{Type: string(m.Type), Name: m.Name, Source: m.Source, Target: m.Destination})
	}
	if s := r.State; s != nil {
		ctr.State = string(s.Status)
		ctr.Running = s.Running
		ctr.ExitCode = s.ExitCode
		ctr.OOMKilled = s.OOMKilled
		ctr.Error = s.Error
		ctr.Pid = s.Pid
		ctr.StartedAt = parseTime(s.StartedAt)
		ctr.FinishedAt = parseTime(s.FinishedAt)
	}
	if h := r.HostConfig; h != nil {
		ctr.Privileged = h.Privileged
		ctr.NetworkMode = string(h.NetworkMode)
		ctr.AutoRemove = h.AutoRemove
		ctr.RestartPolicy = string(h.RestartPolicy.Name)
		ctr.CPUPeriod, ctr.CPUQuota, ctr.NanoCPUs, ctr.Memory = h.CPUPeriod, h.CPUQuota, h.NanoCPUs, h.Memory
		for _, d := range h.Devices {
			ctr.Devices = append(ctr.Devices, DeviceMapping{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
		}
	}
	if ctr.Labels == nil {
		ctr.Labels = map[string]string{}
	}
	return ctr
}

// parseTime reads the engine's RFC 3339 timestamps; the engine's "never"
// (0001-01-01T00:00:00Z) and anything unreadable become the zero time.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// CreateContainer creates (does not start) a container named name and
// returns its ID. The image must be present (see PullImage): a missing one
// gives an error satisfying IsNotFound; a name in use one satisfying
// IsConflict. The engine's warnings are logged.
func (c *Client) CreateContainer(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig) (string, error) {
	var id string
	err := c.do(ctx, c.timeout, "create container "+name, func(ctx context.Context) error {
		res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Name:       name,
			Config:     cfg,
			HostConfig: host,
		})
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			c.log.Info("engine warning", "op", "create container", "container", name, "warning", w)
		}
		id = res.ID
		return nil
	})
	return id, err
}

// StartContainer starts a created or stopped container; starting a running
// one is not an error.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	return c.do(ctx, c.timeout, "start container "+shortID(id), func(ctx context.Context) error {
		_, err := c.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	})
}

// StopContainer stops a running container, killing it after grace (0:
// at once). Stopping a stopped container is not an error.
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	secs := int(grace / time.Second)
	return c.do(ctx, c.timeout+grace, "stop container "+shortID(id), func(ctx context.Context) error {
		_, err := c.api.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
		return err
	})
}

// RenameContainer gives the container a new name. A name in use gives an
// error satisfying IsConflict.
func (c *Client) RenameContainer(ctx context.Context, id, name string) error {
	return c.do(ctx, c.timeout, "rename container "+shortID(id)+" to "+name, func(ctx context.Context) error {
		_, err := c.api.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: name})
		return err
	})
}

// RemoveContainer removes the container (with force, also a running one,
// which is killed). Its anonymous volumes are kept. A container that does
// not exist is not an error. A removal already in progress (the engine
// auto-removing it) gives an error satisfying IsConflict.
func (c *Client) RemoveContainer(ctx context.Context, id string, force bool) error {
	err := c.do(ctx, c.timeout, "remove container "+shortID(id), func(ctx context.Context) error {
		_, err := c.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: force})
		return err
	})
	if IsNotFound(err) {
		return nil
	}
	return err
}

// shortID shortens a full 64-hex-digit container ID to the 12 characters
// used in messages; names and short IDs are returned as they are.
func shortID(id string) string {
	if len(id) != 64 {
		return id
	}
	for _, r := range id {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return id
		}
	}
	return id[:12]
}

// UnpauseContainer resumes a paused container.
func (c *Client) UnpauseContainer(ctx context.Context, id string) error {
	return c.do(ctx, c.timeout, "unpause container "+shortID(id), func(ctx context.Context) error {
		_, err := c.api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		return err
	})
}

// maxLogBytes bounds what ContainerLogs reads.
const maxLogBytes = 64 << 10

// ContainerLogs returns the last n lines the container wrote to stdout and
// stderr, interleaved as the engine stored them.
func (c *Client) ContainerLogs(ctx context.Context, id string, n int) ([]string, error) {
	var out []string
	err := c.do(ctx, c.timeout, "logs of container "+shortID(id), func(ctx context.Context) error {
		rc, err := c.api.ContainerLogs(ctx, id, client.ContainerLogsOptions{
			ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n),
		})
		if err != nil {
			return err
		}
		defer rc.Close()
		var buf bytes.Buffer
		// The camera runs without a TTY: the stream is multiplexed.
		if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, maxLogBytes)); err != nil {
			return err
		}
		for line := range strings.Lines(buf.String()) {
			if line = strings.TrimRight(line, "\r\n"); line != "" {
				out = append(out, line)
			}
		}
		if len(out) > n {
			out = out[len(out)-n:]
		}
		return nil
	})
	return out, err
}
