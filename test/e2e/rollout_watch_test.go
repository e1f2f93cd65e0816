package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/render"
	"github.com/sdss/fliswarm/test/testbed"
)

// rolloutWatch records, from every bed node's engine events, when each
// node first pulled an image and the window its camera was down (its
// first kill/die/destroy to the next start), to check a rollout's
// timeline: every pull before the first camera goes down, then one camera
// down at a time.
type rolloutWatch struct {
	bed       *testbed.Bed
	mu        sync.Mutex
	windows   map[string]*downWindow
	pulls     map[string]time.Time
	bar       barrier
	streamErr sync.Map
}

type downWindow struct{ down, up time.Time }

// watchRollout subscribes to every node's events (each subscription
// confirmed by a probe) until the test ends.
func watchRollout(t *testing.T, bed *testbed.Bed) *rolloutWatch {
	t.Helper()
	w := &rolloutWatch{bed: bed, windows: map[string]*downWindow{}, pulls: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, n := range bed.Nodes {
		evs, errc := subscribe(t, ctx, engineFor(t, n))
		go func() {
			defer func() {
				if err := <-errc; err != nil && ctx.Err() == nil {
					w.streamErr.Store(n.Name, err)
				}
			}()
			for ev := range evs {
				if w.bar.observe(ev) {
					continue
				}
				w.mu.Lock()
				if _, seen := w.pulls[n.Name]; !seen && ev.Type == "image" && ev.Action == "pull" {
					w.pulls[n.Name] = ev.Time
				}
				if ev.Type == "container" && ev.Name == "flicamera-"+n.Name {
					win := w.windows[n.Name]
					switch ev.Action {
					case "kill", "die", "destroy":
						if win == nil {
							w.windows[n.Name] = &downWindow{down: ev.Time}
						}
					case "start":
						if win != nil && win.up.IsZero() {
							win.up = ev.Time
						}
					}
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// check waits for every event of the rollout to arrive, then fails the
// test unless every node pulled before the first camera went down, every
// camera went down and came back, and no two were down at once. It logs
// the timeline.
func (w *rolloutWatch) check(t *testing.T) {
	t.Helper()
	w.bar.wait(t, w.bed.Nodes)
	w.streamErr.Range(func(node, err any) bool {
		t.Fatalf("the event stream of %s ended during the rollout: %v", node, err)
		return false
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	var ws []downWindow
	var firstDown time.Time
	for _, n := range w.bed.Nodes {
		win := w.windows[n.Name]
		if win == nil || win.up.IsZero() {
			t.Fatalf("%s: no down/up events seen: %+v", n.Name, win)
		}
		if firstDown.IsZero() || win.down.Before(firstDown) {
			firstDown = win.down
		}
		ws = append(ws, *win)
	}
	for _, n := range w.bed.Nodes {
		win := w.windows[n.Name]
		p, ok := w.pulls[n.Name]
		if !ok {
			t.Errorf("%s: no pull seen", n.Name)
		} else if p.After(firstDown) {
			t.Errorf("%s pulled at %s, after the first camera went down at %s", n.Name, p.Format("15:04:05.000"), firstDown.Format("15:04:05.000"))
		}
		t.Logf("%s: pulled %s, down %s, up %s (down for %s)", n.Name, p.Format("15:04:05.000"),
			win.down.Format("15:04:05.000"), win.up.Format("15:04:05.000"), win.up.Sub(win.down).Round(time.Millisecond))
	}
	for i := range ws {
		for j := i + 1; j < len(ws); j++ {
			if ws[i].down.Before(ws[j].up) && ws[j].down.Before(ws[i].up) {
				t.Errorf("two cameras were down at once: %+v and %+v", ws[i], ws[j])
			}
		}
	}
}

// runningCameras records each bed node's running camera in ids (its
// container ID) and returns each one's spec hash, failing the test when a
// node has none.
func runningCameras(t *testing.T, bed *testbed.Bed, ids map[string]string) map[string]string {
	t.Helper()
	hashes := map[string]string{}
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		ids[n.Name], hashes[n.Name] = c.ID, c.Labels[render.LabelSpecHash]
	}
	return hashes
}
