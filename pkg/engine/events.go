package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Event is one thing that happened on the engine.
type Event struct {
	// Type is "container", "volume" or "image".
	Type string
	// Action is the engine's verb: create, start, die, kill, stop, oom,
	// destroy, restart, ... for containers; create, mount, unmount,
	// destroy for volumes; pull, tag, untag, delete for images. Health
	// checks give "health_status: healthy" and the like.
	Action string
	// ID is the container's ID, the volume's name, or the image's
	// reference or ID.
	ID string
	// Name is the container's name (no leading "/"), the volume's name, or
	// the image's name as the engine gave it.
	Name string
	// Labels are the container's (or image's) labels: the event's
	// attributes less those the engine adds itself (name, image, exitCode,
	// signal, ...). Volume events carry no labels.
	Labels map[string]string
	// Attributes are all of the engine's attributes, labels included
	// (e.g. "exitCode" on a container's die).
	Attributes map[string]string
	Time       time.Time
}

// eventTypes are the kinds of events Events asks for.
var eventTypes = []events.Type{events.ContainerEventType, events.VolumeEventType, events.ImageEventType}

// engineAttributes are event attributes that the engine sets itself, as
// opposed to labels it copies from the object.
var engineAttributes = map[events.Type]map[string]bool{
	events.ContainerEventType: {
		"name": true, "image": true, "exitCode": true, "signal": true,
		"execID": true, "execDuration": true, "healthStatus": true,
		"oldName": true,
	},
	events.ImageEventType: {"name": true},
}

// Events streams the engine's container, volume and image events from now
// on. The error channel receives exactly one error when the stream ends:
// the caller's context ending (wrapping ctx.Err()), the engine going away
// (wrapping ErrStreamEnded and, when there is one, the network error), or
// the stream failing to start within the per-call timeout (IsUnreachable).
// Both channels are closed after that error. Events arriving while nobody
// reads wait (the engine buffers a little, then drops the subscription).
//
// A TCP connection to a node that vanishes without a word is noticed by
// keepalive probes (Options.KeepAlive): by default after about half a
// minute.
func (c *Client) Events(ctx context.Context) (<-chan Event, <-chan error) {
	out := make(chan Event)
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		defer close(out)
		errc <- c.streamEvents(ctx, out)
	}()
	return out, errc
}

// streamEvents runs one event subscription until it ends, sending events
// to out, and returns why it ended.
func (c *Client) streamEvents(ctx context.Context, out chan<- Event) error {
	const op = "events"
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	f := client.Filters{}
	for _, t := range eventTypes {
		f.Add("type", string(t))
	}
	// The SDK returns once the engine has answered the request; give it
	// the per-call timeout for that.
	var (
		mu       sync.Mutex
		started  bool
		timedOut bool
	)
	timer := time.AfterFunc(c.timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !started {
			timedOut = true
			cancel()
		}
	})
	res := c.api.Events(streamCtx, client.EventsListOptions{Filters: f})
	mu.Lock()
	started = true
	connectTimedOut := timedOut
	mu.Unlock()
	timer.Stop()
	c.log.V(1).Info("event stream requested", "op", op)

	msgs := res.Messages
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				// Not closed by the SDK as of v0.6.2; the error follows.
				msgs = nil
				continue
			}
			ev, ok := fromMessage(m)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return c.wrap(ctx, ctx, c.timeout, op, ctx.Err())
			}
		case err, ok := <-res.Err:
			if !ok || err == nil {
				err = ErrStreamEnded
			}
			switch {
			case ctx.Err() != nil:
				return c.wrap(ctx, ctx, c.timeout, op, ctx.Err())
			case connectTimedOut:
				return fmt.Errorf("%s: %s: %w", c.node, op, &TimeoutError{After: c.timeout, Err: err})
			case errors.Is(err, ErrStreamEnded):
				return fmt.Errorf("%s: %s: %w", c.node, op, err)
			default:
				return fmt.Errorf("%s: %s: %w: %w", c.node, op, ErrStreamEnded, err)
			}
		}
	}
}

// fromMessage converts an engine event; ok is false for kinds of events
// Events does not report.
func fromMessage(m events.Message) (ev Event, ok bool) {
	switch m.Type {
	case events.ContainerEventType, events.VolumeEventType, events.ImageEventType:
	default:
		return Event{}, false
	}
	ev = Event{
		Type:       string(m.Type),
		Action:     string(m.Action),
		ID:         m.Actor.ID,
		Attributes: maps.Clone(m.Actor.Attributes),
		Labels:     map[string]string{},
	}
	if ev.Attributes == nil {
		ev.Attributes = map[string]string{}
	}
	switch m.Type {
	case events.VolumeEventType:
		ev.Name = m.Actor.ID
	default:
		ev.Name = ev.Attributes["name"]
		for k, v := range ev.Attributes {
			if !engineAttributes[m.Type][k] {
				ev.Labels[k] = v
			}
		}
	}
	switch {
	case m.TimeNano != 0:
		ev.Time = time.Unix(0, m.TimeNano)
	case m.Time != 0:
		ev.Time = time.Unix(m.Time, 0)
	}
	return ev, true
}
