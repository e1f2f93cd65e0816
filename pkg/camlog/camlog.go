package camlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sdss/fliswarm/pkg/engine"
)

// PreviousSuffix names the container a rollout keeps stopped
// ("<container>-previous", see controllers/history.go).
const PreviousSuffix = "-previous"

// Errors a caller tells apart (errors.Is): the request names something
// the node does not have.
var (
	// ErrNoContainer: the node has no camera container.
	ErrNoContainer = errors.New("no camera container")
	// ErrNoPrevious: the node's camera has no previous instance.
	ErrNoPrevious = errors.New("no previous instance")
)

// Engine is what reading logs needs of a node's engine.
type Engine interface {
	InspectContainer(ctx context.Context, id string) (engine.Container, error)
	StreamLogs(ctx context.Context, id string, opts engine.LogOptions, fn func(engine.LogLine) error) error
}

// Request is what to read of one node's camera output.
type Request struct {
	// Tail is how many of the last lines to start with; negative: all.
	Tail int
	// Since, when set, drops the lines older than it.
	Since time.Time
	// Follow streams new lines until the context ends (only for a camera
	// that runs: the output of a stopped one is complete).
	Follow bool
	// Previous asks for the instance that ran before the current one.
	Previous bool
}

// Instance is the container run a request shows.
type Instance struct {
	// Container is the container's name, ID its ID.
	Container, ID string
	// Since and Until bound the lines to this run (zero: unbounded).
	Since, Until time.Time
	// Running tells that the container runs (its output can be
	// followed).
	Running bool
	// Description says which instance this is, for the operator.
	Description string
}

// Pick finds the container run of the camera container name that req
// asks for: the current one (its current or last run), or with
// req.Previous the run before it (see the package documentation). A
// missing container wraps ErrNoContainer, a missing previous instance
// ErrNoPrevious; engine errors are returned as they are.
func Pick(ctx context.Context, eng Engine, name string, previous bool) (Instance, error) {
	cur, err := eng.InspectContainer(ctx, name)
	found := err == nil
	if err != nil && !engine.IsNotFound(err) {
		return Instance{}, err
	}
	if !previous {
		if !found {
			return Instance{}, fmt.Errorf("%w %s on the node", ErrNoContainer, name)
		}
		in := Instance{Container: cur.Name, ID: cur.ID, Since: cur.StartedAt, Running: cur.Running}
		if cur.Running {
			in.Description = fmt.Sprintf("%s (%s), running since %s", cur.Name, short(cur.ID), stamp(cur.StartedAt))
		} else {
			in.Description = fmt.Sprintf("%s (%s), %s%s", cur.Name, short(cur.ID), cur.State, ended(cur))
		}
		return in, nil
	}

	// The candidates, each with the time it ended.
	var (
		earlier    *Instance
		earlierEnd time.Time
	)
	if found && !cur.StartedAt.IsZero() {
		if !cur.Running {
			// Nothing runs: the run that ran last is the container's last.
			earlier = &Instance{Container: cur.Name, ID: cur.ID, Since: cur.StartedAt,
				Description: fmt.Sprintf("the last run of %s (%s), which %s%s", cur.Name, short(cur.ID), cur.State, ended(cur))}
			earlierEnd = cur.FinishedAt
		} else if last, ok, err := lastLineBefore(ctx, eng, cur.ID, cur.StartedAt); err != nil {
			return Instance{}, err
		} else if ok {
			earlier = &Instance{Container: cur.Name, ID: cur.ID, Until: cur.StartedAt,
				Description: fmt.Sprintf("the run of %s (%s) before its restart at %s", cur.Name, short(cur.ID), stamp(cur.StartedAt))}
			earlierEnd = last
		}
	}
	var kept *Instance
	var keptEnd time.Time
	if p, err := eng.InspectContainer(ctx, name+PreviousSuffix); err == nil {
		kept = &Instance{Container: p.Name, ID: p.ID, Since: p.StartedAt, Running: p.Running,
			Description: fmt.Sprintf("%s (%s), the camera a rollout replaced, %s%s", p.Name, short(p.ID), p.State, ended(p))}
		keptEnd = p.FinishedAt
		if p.Running {
			keptEnd = time.Now()
		}
	} else if !engine.IsNotFound(err) {
		return Instance{}, err
	}
	switch {
	case earlier != nil && (kept == nil || earlierEnd.After(keptEnd)):
		return *earlier, nil
	case kept != nil:
		return *kept, nil
	case !found:
		return Instance{}, fmt.Errorf("%w: no camera container %s and no %s on the node", ErrNoPrevious, name, name+PreviousSuffix)
	default:
		return Instance{}, fmt.Errorf("%w: %s has not been restarted and no %s is kept", ErrNoPrevious, name, name+PreviousSuffix)
	}
}

// lastLineBefore returns the time of the last line container id wrote
// before t, and false when it wrote none. The engine applies its tail
// before its time bounds, so the lines are read from the start.
func lastLineBefore(ctx context.Context, eng Engine, id string, t time.Time) (time.Time, bool, error) {
	var last time.Time
	found := false
	err := eng.StreamLogs(ctx, id, engine.LogOptions{Tail: -1, Until: t}, func(l engine.LogLine) error {
		if !l.Time.After(t) {
			last, found = l.Time, true
		}
		return nil
	})
	return last, found, err
}

// Stream sends the lines of in that req selects to fn, following a
// running instance's new lines when req.Follow, until they end, ctx ends
// (nil) or fn fails (its error).
func (in Instance) Stream(ctx context.Context, eng Engine, req Request, fn func(engine.LogLine) error) error {
	opts := engine.LogOptions{Tail: req.Tail, Since: in.Since, Until: in.Until, Follow: req.Follow && in.Running}
	if req.Since.After(opts.Since) {
		opts.Since = req.Since
	}
	if in.Until.IsZero() || req.Tail < 0 {
		return eng.StreamLogs(ctx, in.ID, opts, fn)
	}
	// The engine would take the tail of the whole log before applying
	// Until: the tail of this run is kept here.
	opts.Tail = -1
	ring := make([]engine.LogLine, 0, req.Tail)
	err := eng.StreamLogs(ctx, in.ID, opts, func(l engine.LogLine) error {
		if req.Tail == 0 || l.Time.After(in.Until) {
			return nil
		}
		if len(ring) == req.Tail {
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, l)
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range ring {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ended says how and when a stopped container's last run ended.
func ended(c engine.Container) string {
	if c.Running || c.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf(" (exit code %d) at %s", c.ExitCode, stamp(c.FinishedAt))
}
