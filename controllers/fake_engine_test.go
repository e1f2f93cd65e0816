package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/sdss/fliswarm/pkg/engine"
)

// fakeEngine is one node's Docker Engine, in memory, behaving as the real
// one does where the controller can tell: containers go created → running
// → exited (or paused), with StartedAt and FinishedAt from the fake clock
// and an exit code; every change is announced on the event streams
// (create, start, die, pause, unpause, kill, destroy); names conflict;
// missing objects are NotFound. A test can make any method fail
// (Fail), make containers exit at start (env BAD=1, or crashCode), and
// count calls.
type fakeEngine struct {
	w    *fakeWorld
	node string

	mu         sync.Mutex
	containers map[string]*fakeContainer
	images     map[string]engine.Image
	volumes    map[string]engine.Volume
	fail       map[string]error
	calls      map[string]int
	// crashCode, when not 0, makes every container exit with it at start.
	crashCode int
	// hold, when set for a method, blocks that method until closed.
	hold map[string]chan struct{}
	subs []*fakeSub
	seq  int
}

type fakeContainer struct {
	engine.Container
	env  []string
	logs []string
}

type fakeSub struct {
	mu   sync.Mutex
	ch   chan engine.Event
	errs chan error
	done chan struct{}
	once sync.Once
}

func newFakeEngine(w *fakeWorld, node string) *fakeEngine {
	return &fakeEngine{
		w: w, node: node,
		containers: map[string]*fakeContainer{}, images: map[string]engine.Image{},
		volumes: map[string]engine.Volume{}, fail: map[string]error{}, calls: map[string]int{},
		hold: map[string]chan struct{}{},
	}
}

// Fail makes method return err from now on (nil: succeed again).
func (e *fakeEngine) Fail(method string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		delete(e.fail, method)
	} else {
		e.fail[method] = err
	}
}

// Hold blocks every call of method until the returned func is called.
func (e *fakeEngine) Hold(method string) (release func()) {
	ch := make(chan struct{})
	e.mu.Lock()
	e.hold[method] = ch
	e.mu.Unlock()
	return sync.OnceFunc(func() {
		e.mu.Lock()
		delete(e.hold, method)
		e.mu.Unlock()
		close(ch)
	})
}

// SetCrash makes every container exit with code at start (0: never).
func (e *fakeEngine) SetCrash(code int) {
	e.mu.Lock()
	e.crashCode = code
	e.mu.Unlock()
}

// Calls is how many times method was called.
func (e *fakeEngine) Calls(method string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[method]
}

// enter counts a call, waits while the method is held, and returns the
// error injected for it.
func (e *fakeEngine) enter(ctx context.Context, method string) error {
	e.mu.Lock()
	e.calls[method]++
	hold, err := e.hold[method], e.fail[method]
	e.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func notFound(what, id string) error {
	return fmt.Errorf("No such %s: %s: %w", what, id, cerrdefs.ErrNotFound)
}

// find returns the container with id or name; e.mu held.
func (e *fakeEngine) find(id string) *fakeContainer {
	if c, ok := e.containers[id]; ok {
		return c
	}
	for _, c := range e.containers {
		if c.Name == id {
			return c
		}
	}
	return nil
}

// changed records an operation and whether a camera runs on the node,
// then announces evs; e.mu held on entry, released on return.
func (e *fakeEngine) changed(op, target string, evs ...engine.Event) {
	up := false
	for _, c := range e.containers {
		up = up || c.State == "running"
	}
	e.mu.Unlock()
	e.w.record(e.node, op, target, up)
	for _, ev := range evs {
		e.emit(ev)
	}
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

// The Engine interface.

func (e *fakeEngine) Ping(ctx context.Context) error { return e.enter(ctx, "Ping") }

func (e *fakeEngine) ListContainers(ctx context.Context, labels map[string]string, names ...string) ([]engine.Container, error) {
	if err := e.enter(ctx, "ListContainers"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Container
	for _, c := range e.containers {
		match := len(labels) > 0 || len(names) == 0
		for k, v := range labels {
			match = match && c.Labels[k] == v
		}
		if match || slices.Contains(names, c.Name) {
			cp := c.Container
			cp.Labels = maps.Clone(c.Labels)
			out = append(out, cp)
		}
	}
	slices.SortFunc(out, func(a, b engine.Container) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (e *fakeEngine) InspectContainer(ctx context.Context, id string) (engine.Container, error) {
	if err := e.enter(ctx, "InspectContainer"); err != nil {
		return engine.Container{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return engine.Container{}, notFound("container", id)
	}
	cp := c.Container
	cp.Labels = maps.Clone(c.Labels)
	return cp, nil
}

func (e *fakeEngine) CreateContainer(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig) (string, error) {
	if err := e.enter(ctx, "CreateContainer"); err != nil {
		return "", err
	}
	e.mu.Lock()
	if e.find(name) != nil {
		e.mu.Unlock()
		return "", fmt.Errorf("Conflict. The container name %q is already in use: %w", "/"+name, cerrdefs.ErrConflict)
	}
	img, ok := e.images[cfg.Image]
	if !ok {
		e.mu.Unlock()
		return "", notFound("image", cfg.Image)
	}
	e.seq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", e.node, e.seq))
	c := &fakeContainer{Container: engine.Container{
		ID: hex.EncodeToString(sum[:]), Name: name, Image: cfg.Image, ImageID: img.ID, State: "created",
		Labels: maps.Clone(cfg.Labels), Created: e.w.stamp(), Privileged: host.Privileged,
		NetworkMode: string(host.NetworkMode),
	}, env: slices.Clone(cfg.Env)}
	e.containers[c.ID] = c
	e.changed("create", name, e.event(c, "create"))
	return c.ID, nil
}

// exitCode is how a container started now fails at once (0: it runs).
func (e *fakeEngine) exitCode(c *fakeContainer) int {
	if slices.Contains(c.env, "BAD=1") {
		return 2
	}
	return e.crashCode
}

func (e *fakeEngine) StartContainer(ctx context.Context, id string) error {
	if err := e.enter(ctx, "StartContainer"); err != nil {
		return err
	}
	e.mu.Lock()
	c := e.find(id)
	if c == nil {
		e.mu.Unlock()
		return notFound("container", id)
	}
	if c.State == "running" || c.State == "paused" {
		e.mu.Unlock()
		return nil // 304 Not Modified
	}
	c.State, c.Running, c.ExitCode, c.StartedAt, c.FinishedAt = "running", true, 0, e.w.stamp(), time.Time{}
	evs := []engine.Event{e.event(c, "start")}
	if code := e.exitCode(c); code != 0 {
		c.State, c.Running, c.ExitCode, c.FinishedAt = "exited", false, code, e.w.stamp()
		c.logs = append(c.logs, "flicamera "+e.node+" starting", fmt.Sprintf("fatal: cannot use the environment %v", c.env),
			fmt.Sprintf("exiting with code %d", code))
		evs = append(evs, e.event(c, "die", "exitCode", fmt.Sprint(code)))
	}
	e.changed("start", c.Name, evs...)
	return nil
}

func (e *fakeEngine) UnpauseContainer(ctx context.Context, id string) error {
	if err := e.enter(ctx, "UnpauseContainer"); err != nil {
		return err
	}
	e.mu.Lock()
	c := e.find(id)
	if c == nil || c.State != "paused" {
		e.mu.Unlock()
		return fmt.Errorf("container %s is not paused: %w", id, cerrdefs.ErrConflict)
	}
	c.State, c.Running = "running", true
	e.changed("unpause", c.Name, e.event(c, "unpause"))
	return nil
}

func (e *fakeEngine) RemoveContainer(ctx context.Context, id string, force bool) error {
	if err := e.enter(ctx, "RemoveContainer"); err != nil {
		return err
	}
	e.mu.Lock()
	c := e.find(id)
	if c == nil {
		e.mu.Unlock()
		return notFound("container", id)
	}
	var evs []engine.Event
	if c.Running {
		if !force {
			e.mu.Unlock()
			return fmt.Errorf("cannot remove a running container: %w", cerrdefs.ErrConflict)
		}
		c.State, c.Running, c.ExitCode, c.FinishedAt = "exited", false, 137, e.w.stamp()
		evs = append(evs, e.event(c, "kill", "signal", "9"), e.event(c, "die", "exitCode", "137"))
	}
	delete(e.containers, c.ID)
	evs = append(evs, e.event(c, "destroy"))
	e.changed("remove", c.Name, evs...)
	return nil
}

func (e *fakeEngine) ContainerLogs(ctx context.Context, id string, lines int) ([]string, error) {
	if err := e.enter(ctx, "ContainerLogs"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(id)
	if c == nil {
		return nil, notFound("container", id)
	}
	return slices.Clone(c.logs[max(0, len(c.logs)-lines):]), nil
}

func (e *fakeEngine) InspectImage(ctx context.Context, ref string) (engine.Image, error) {
	if err := e.enter(ctx, "InspectImage"); err != nil {
		return engine.Image{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	img, ok := e.images[ref]
	if !ok {
		return engine.Image{}, notFound("image", ref)
	}
	return img, nil
}

func (e *fakeEngine) PullImage(ctx context.Context, ref string, opts engine.PullOptions) error {
	if err := e.enter(ctx, "PullImage"); err != nil {
		e.w.note(e.node, "pull", ref) // tried, and failed
		return err
	}
	if err := e.w.pulling(ctx, e.node, ref); err != nil {
		return err
	}
	if opts.Progress != nil {
		opts.Progress(engine.PullProgress{Current: 1 << 20, Total: 1 << 20, Status: "Download complete"})
	}
	sum := sha256.Sum256([]byte(ref))
	e.mu.Lock()
	e.images[ref] = engine.Image{ID: "sha256:" + hex.EncodeToString(sum[:]), RepoTags: []string{ref}}
	e.changed("pulled", ref)
	return nil
}

func (e *fakeEngine) InspectVolume(ctx context.Context, name string) (engine.Volume, error) {
	if err := e.enter(ctx, "InspectVolume"); err != nil {
		return engine.Volume{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.volumes[name]
	if !ok {
		return engine.Volume{}, notFound("volume", name)
	}
	return v, nil
}

func (e *fakeEngine) CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (engine.Volume, error) {
	if err := e.enter(ctx, "CreateVolume"); err != nil {
		return engine.Volume{}, err
	}
	e.mu.Lock()
	if v, ok := e.volumes[name]; ok {
		e.mu.Unlock()
		return v, nil
	}
	v := engine.Volume{Name: name, Driver: driver, Options: maps.Clone(opts), Labels: maps.Clone(labels)}
	e.volumes[name] = v
	e.changed("create-volume", name, engine.Event{Type: "volume", Action: "create", ID: name, Name: name})
	return v, nil
}

func (e *fakeEngine) RemoveVolume(ctx context.Context, name string, force bool) error {
	if err := e.enter(ctx, "RemoveVolume"); err != nil {
		return err
	}
	e.mu.Lock()
	if _, ok := e.volumes[name]; !ok {
		e.mu.Unlock()
		return notFound("volume", name)
	}
	delete(e.volumes, name)
	e.changed("remove-volume", name, engine.Event{Type: "volume", Action: "destroy", ID: name, Name: name})
	return nil
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

func (e *fakeEngine) Close() error { return nil }

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
	e.changed("died", name, e.event(c, "die", "exitCode", fmt.Sprint(code)))
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

// Container returns the container called name.
func (e *fakeEngine) Container(name string) (engine.Container, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(name)
	if c == nil {
		return engine.Container{}, false
	}
	cp := c.Container
	cp.Labels = maps.Clone(c.Labels)
	return cp, true
}
