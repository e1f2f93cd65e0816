package engine

import (
	"context"
	"maps"

	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
)

// Volume is what the reconciler needs to know about a named volume.
type Volume struct {
	Name    string
	Driver  string
	Options map[string]string
	Labels  map[string]string
	// Mountpoint is where the engine mounts it on the node.
	Mountpoint string
}

func fromVolume(v volume.Volume) Volume {
	out := Volume{
		Name:       v.Name,
		Driver:     v.Driver,
		Options:    maps.Clone(v.Options),
		Labels:     maps.Clone(v.Labels),
		Mountpoint: v.Mountpoint,
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	return out
}

// InspectVolume returns the volume called name; a missing one gives an
// error satisfying IsNotFound.
func (c *Client) InspectVolume(ctx context.Context, name string) (Volume, error) {
	var out Volume
	err := c.do(ctx, c.timeout, "inspect volume "+name, func(ctx context.Context) error {
		res, err := c.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
		if err != nil {
			return err
		}
		out = fromVolume(res.Volume)
		return nil
	})
	return out, err
}

// CreateVolume creates the volume name with driver ("" is the engine's
// default, "local") and the driver's options, and returns it as the engine
// reports it. Like the engine, it returns an existing volume of that name
// unchanged (whatever its options) when the driver agrees; compare the
// result with what was asked for.
func (c *Client) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (Volume, error) {
	var out Volume
	err := c.do(ctx, c.timeout, "create volume "+name, func(ctx context.Context) error {
		res, err := c.api.VolumeCreate(ctx, client.VolumeCreateOptions{
			Name:       name,
			Driver:     driver,
			DriverOpts: opts,
			Labels:     labels,
		})
		if err != nil {
			return err
		}
		out = fromVolume(res.Volume)
		return nil
	})
	return out, err
}

// RemoveVolume removes the volume name (force as `docker volume rm -f`).
// A volume that does not exist is not an error; one still used by a
// container gives an error satisfying IsConflict.
func (c *Client) RemoveVolume(ctx context.Context, name string, force bool) error {
	err := c.do(ctx, c.timeout, "remove volume "+name, func(ctx context.Context) error {
		_, err := c.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
		return err
	})
	if IsNotFound(err) {
		return nil
	}
	return err
}
