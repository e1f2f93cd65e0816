package controllers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/sdss/fliswarm/pkg/engine"
)

// The fake engine's event streams, and what happens to a camera outside
// the controller (each announced on them).

// fakeSub is one open event stream. Its channel is unbuffered: emit
// returns once the reader took the event.
type fakeSub struct {
	mu   sync.Mutex
	ch   chan engine.Event
	errs chan error
	done chan struct{}
	once sync.Once
}

func (e *fakeEngine) event(c *fakeContainer, action string, attrs ...string) engine.Event {
	a := maps.Clone(c.Labels)
	a["name"] = c.Name
	for i := 0; i+1 < len(attrs); i += 2 {
		a[attrs[i]] = attrs[i+1]
	}
	return engine.Event{Type: "container", Action: action, ID: c.ID, Name: c.Name,
		Labels: maps.Clone(c.Labels), Attributes: a, Time: e.w.clock.Now()}
}

// emit sends ev to every event stream, as the engine does, and returns
// once each reader has taken it (the streams are unbuffered).
func (e *fakeEngine) emit(ev engine.Event) {
	e.send(ev)
	e.w.emitted.Add(1)
}

func (e *fakeEngine) send(ev engine.Event) {
	e.mu.Lock()
	subs := slices.Clone(e.subs)
	e.mu.Unlock()
	for _, s := range subs {
		s.mu.Lock()
		select {
		case <-s.done: // ended meanwhile: its channel may be closed
		default:
			select {
			case s.ch <- ev:
			case <-s.done:
			}
		}
		s.mu.Unlock()
	}
}

// Sync returns once every event stream has handled the events sent before
// (the reader takes the next one only when done with the last): a
// sentinel no reader acts on. It reports whether a stream is open.
func (e *fakeEngine) Sync() bool {
	e.mu.Lock()
	n := len(e.subs)
	e.mu.Unlock()
	e.send(engine.Event{Type: "network", Action: "sync"})
	return n > 0
}

// Streams is the number of open event streams.
func (e *fakeEngine) Streams() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs)
}

func (e *fakeEngine) end(s *fakeSub, err error) {
	s.once.Do(func() {
		close(s.done)
		e.mu.Lock()
		e.subs = slices.DeleteFunc(e.subs, func(x *fakeSub) bool { return x == s })
		e.mu.Unlock()
		s.mu.Lock()
		s.errs <- err
		close(s.errs)
		close(s.ch)
		s.mu.Unlock()
	})
}

func (e *fakeEngine) Events(ctx context.Context) (<-chan engine.Event, <-chan error) {
	s := &fakeSub{ch: make(chan engine.Event), errs: make(chan error, 1), done: make(chan struct{})}
	if err := e.enter(ctx, "Events"); err != nil {
		e.end(s, err)
		return s.ch, s.errs
	}
	e.mu.Lock()
	e.subs = append(e.subs, s)
	e.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
			e.end(s, ctx.Err())
		case <-s.done:
		}
	}()
	return s.ch, s.errs
}

// Test actions: what happens to a camera outside the controller.

// Kill makes the node's running camera exit with code, as a crash does.
func (e *fakeEngine) Kill(name string, code int) {
	e.mu.Lock()
	c := e.find(name)
	if c == nil || !c.Running {
		e.mu.Unlock()
		panic("fake engine: no running container " + name)
	}
	c.State, c.Running, c.ExitCode, c.FinishedAt = "exited", false, code, e.w.stamp()
	evs := []engine.Event{e.event(c, "die", "exitCode", fmt.Sprint(code))}
	if c.AutoRemove { // --rm: the engine removes it at once
		delete(e.containers, c.ID)
		evs = append(evs, e.event(c, "destroy"))
	}
	e.changed("died", name, evs...)
}

// Run puts c there running, with img under c.Image, as a docker run of
// someone else (the Python fliswarm) does.
func (e *fakeEngine) Run(c engine.Container, img engine.Image) {
	e.mu.Lock()
	e.images[c.Image] = img
	c.Created, c.StartedAt, c.State, c.Running = e.w.stamp(), e.w.stamp(), "running", true
	fc := &fakeContainer{Container: c, env: slices.Clone(c.Env)}
	e.containers[c.ID] = fc
	e.changed("run", c.Name, e.event(fc, "create"), e.event(fc, "start"))
}

// Pause pauses the node's running camera (docker pause).
func (e *fakeEngine) Pause(name string) {
	e.mu.Lock()
	c := e.find(name)
	if c == nil || !c.Running {
		e.mu.Unlock()
		panic("fake engine: no running container " + name)
	}
	c.State = "paused"
	e.changed("paused", name, e.event(c, "pause"))
}
