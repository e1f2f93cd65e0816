package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
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
	// Image garbage collection (fake_images_test.go): when each image
	// ID was first stored and its size; the data root's filesystem.
	imageMeta map[string]fakeImageMeta
	fs        engine.FSUsage
}

type fakeContainer struct {
	engine.Container
	env  []string
	logs []string
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
	camera := e.w.cameraUpLocked(e)
	e.mu.Unlock()
	e.w.record(e.node, op, target, up)
	if e.w.onChange != nil {
		e.w.onChange(e.node, camera)
	}
	for _, ev := range evs {
		e.emit(ev)
	}
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
	e.calls["ListContainers.inspects"] += len(out) // the real one inspects each
	slices.SortFunc(out, func(a, b engine.Container) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// ListStates lists as ListContainers does, filling only what the
// engine's container list carries. It counts (and fails, and holds) as
// ListContainers: both are one container listing; Calls("ListStates")
// counts it alone.
func (e *fakeEngine) ListStates(ctx context.Context, labels map[string]string, names ...string) ([]engine.Container, error) {
	if err := e.enter(ctx, "ListContainers"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls["ListStates"]++
	var out []engine.Container
	for _, c := range e.containers {
		match := len(labels) > 0 || len(names) == 0
		for k, v := range labels {
			match = match && c.Labels[k] == v
		}
		if match || slices.Contains(names, c.Name) {
			out = append(out, engine.Container{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID,
				State: c.State, Running: c.State == "running", Labels: maps.Clone(c.Labels), Created: c.Created.Truncate(time.Second)})
		}
	}
	slices.SortFunc(out, func(a, b engine.Container) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Requests is how many requests a real engine would have answered for
// the calls made: one per call, plus, for ListContainers without
// ListStates, the inspect of each container listed; the event stream
// counts once per opening.
func (e *fakeEngine) Requests() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for m, c := range e.calls {
		if m != "ListStates" {
			n += c
		}
	}
	return n
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

func (e *fakeEngine) StopContainer(ctx context.Context, id string, _ time.Duration) error {
	if err := e.enter(ctx, "StopContainer"); err != nil {
		return err
	}
	e.mu.Lock()
	c := e.find(id)
	if c == nil {
		e.mu.Unlock()
		return notFound("container", id)
	}
	if !c.Running {
		e.mu.Unlock()
		return nil
	}
	c.State, c.Running, c.ExitCode, c.FinishedAt = "exited", false, 137, e.w.stamp()
	e.changed("stop", c.Name, e.event(c, "kill", "signal", "9"), e.event(c, "die", "exitCode", "137"), e.event(c, "stop"))
	return nil
}

func (e *fakeEngine) RenameContainer(ctx context.Context, id, name string) error {
	if err := e.enter(ctx, "RenameContainer"); err != nil {
		return err
	}
	e.mu.Lock()
	c := e.find(id)
	if c == nil {
		e.mu.Unlock()
		return notFound("container", id)
	}
	if o := e.find(name); o != nil && o != c {
		e.mu.Unlock()
		return fmt.Errorf("Conflict. The container name %q is already in use: %w", "/"+name, cerrdefs.ErrConflict)
	}
	old := c.Name
	c.Name = name
	e.changed("rename", old+"→"+name, e.event(c, "rename"))
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
		for _, i := range e.images {
			if i.ID == ref {
				return i, nil
			}
		}
		return engine.Image{}, notFound("image", ref)
	}
	return img, nil
}

// RegistryDigest answers from the world's registry.
func (e *fakeEngine) RegistryDigest(ctx context.Context, ref string) (string, error) {
	if err := e.enter(ctx, "RegistryDigest"); err != nil {
		return "", err
	}
	return e.w.registryDigest(ref)
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
	img := engine.Image{ID: "sha256:" + hex.EncodeToString(sum[:]), RepoTags: []string{ref}}
	repo, digest, known := e.w.resolve(ref)
	if known {
		img = registryImage(repo, digest)
		if !strings.Contains(ref, "@") {
			img.RepoTags = []string{ref}
		}
	}
	e.mu.Lock()
	if known {
		// The image of a digest keeps its repo@digest name; a tag moves.
		if old, ok := e.images[repo+"@"+digest]; ok {
			img.RepoTags = append(img.RepoTags, old.RepoTags...)
		}
		e.images[repo+"@"+digest] = img
	}
	e.images[ref] = img
	e.storedLocked(img.ID, 0)
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

func (e *fakeEngine) Close() error { return nil }

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
