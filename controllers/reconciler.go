package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/moby/moby/api/types/container"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Engine is what the reconciler needs of a node's Docker Engine.
// *engine.Client satisfies it.
type Engine interface {
	Ping(ctx context.Context) error
	ListContainers(ctx context.Context, labels map[string]string, names ...string) ([]engine.Container, error)
	InspectContainer(ctx context.Context, id string) (engine.Container, error)
	CreateContainer(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig) (string, error)
	StartContainer(ctx context.Context, id string) error
	RemoveContainer(ctx context.Context, id string, force bool) error
	InspectImage(ctx context.Context, ref string) (engine.Image, error)
	PullImage(ctx context.Context, ref string) error
	InspectVolume(ctx context.Context, name string) (engine.Volume, error)
	CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (engine.Volume, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	Events(ctx context.Context) (<-chan engine.Event, <-chan error)
	Close() error
}

// Options configure a Reconciler. Zero values take the defaults noted.
type Options struct {
	Logger logr.Logger
	// NewEngine opens a node's engine; default engine.New.
	NewEngine func(node, address string) (Engine, error)
	// Ping checks that a host answers; default ping.Host.
	Ping func(ctx context.Context, host string, timeout time.Duration, fallbackPort int) error
	// Probe checks that the camera's port accepts connections; default a
	// TCP dial.
	Probe func(ctx context.Context, address string) error
	// ReadyTimeout bounds the wait for a new container to run and its
	// camera port to answer. Default 30 s.
	ReadyTimeout time.Duration
	// RetryInitial and RetryMax bound the per-node backoff. Default 1 s
	// and 60 s.
	RetryInitial, RetryMax time.Duration
	// OnContainerStarted is called after a container was created or
	// started and answers on its port (the actor reconnects its device).
	OnContainerStarted func(node string)
	// OnStatus is called after a node's status changed.
	OnStatus func(st v1.NodeStatus)
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Reconciler converges every enabled node to the spec.
type Reconciler struct {
	opts  Options
	log   logr.Logger
	queue *Queue

	mu       sync.Mutex
	spec     *v1.Swarm
	revision string
	engines  map[string]*nodeEngine
	status   map[string]*v1.NodeStatus
	override map[string]bool // runtime enable (true) / disable (false)
	force    map[string]bool
	gen      map[string]uint64
	waiters  map[string][]*waiter
	rollout  chan struct{}
	runCtx   context.Context
	devices  map[string]bool
}

type nodeEngine struct {
	address   string
	eng       Engine
	stopWatch context.CancelFunc
}

type waiter struct {
	gen     uint64
	done    chan struct{}
	lastErr error
	// actions taken for this request, over every attempt.
	actions []Action
}

// New returns a reconciler for spec. It does nothing until Run or
// Reconcile is called.
func New(spec *v1.Swarm, revision string, opts Options) *Reconciler {
	if opts.NewEngine == nil {
		opts.NewEngine = func(node, address string) (Engine, error) {
			return engine.New(node, address, engine.Options{Logger: opts.Logger})
		}
	}
	if opts.Ping == nil {
		opts.Ping = defaultPing
	}
	if opts.Probe == nil {
		opts.Probe = tcpProbe
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	if opts.RetryInitial == 0 {
		opts.RetryInitial = time.Second
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 60 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Reconciler{
		opts:     opts,
		log:      opts.Logger,
		queue:    NewQueue(opts.RetryInitial, opts.RetryMax),
		engines:  map[string]*nodeEngine{},
		status:   map[string]*v1.NodeStatus{},
		override: map[string]bool{},
		force:    map[string]bool{},
		gen:      map[string]uint64{},
		waiters:  map[string][]*waiter{},
		devices:  map[string]bool{},
	}
	r.setSpecLocked(spec, revision)
	return r
}

// Spec returns the spec in force and its revision.
func (r *Reconciler) Spec() (*v1.Swarm, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spec, r.revision
}

// SetSpec replaces the desired state and enqueues every node it touches.
func (r *Reconciler) SetSpec(spec *v1.Swarm, revision string) {
	r.mu.Lock()
	before := r.enabledLocked()
	r.setSpecLocked(spec, revision)
	after := r.enabledLocked()
	r.mu.Unlock()
	r.syncWatchers()
	for _, n := range union(before, after) {
		r.queue.Add(n)
	}
}

func (r *Reconciler) setSpecLocked(spec *v1.Swarm, revision string) {
	if r.rollout == nil || cap(r.rollout) != spec.MaxUnavailable {
		r.rollout = make(chan struct{}, spec.MaxUnavailable)
	}
	r.spec, r.revision = spec, revision
}

// Enabled returns the nodes being managed: the spec's enabled nodes with
// the runtime overrides of the actor's enable/disable applied.
func (r *Reconciler) Enabled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.enabledLocked()
}

func (r *Reconciler) enabledLocked() []string {
	var out []string
	for _, n := range r.spec.EnabledNodes {
		if on, ok := r.override[n]; !ok || on {
			out = append(out, n)
		}
	}
	for _, n := range r.spec.NodeNames() {
		if r.override[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func (r *Reconciler) isEnabled(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.enabledLocked(), node)
}

// SetEnabled enables or disables a configured node at run time (the
// actor's enable and disable). A disabled node's container is left as it
// is. It returns false when the node is not configured.
func (r *Reconciler) SetEnabled(node string, on bool) bool {
	r.mu.Lock()
	if _, ok := r.spec.Nodes[node]; !ok {
		r.mu.Unlock()
		return false
	}
	r.override[node] = on
	r.mu.Unlock()
	r.syncWatchers()
	r.queue.Add(node)
	return true
}

// SetDeviceConnected records whether the actor's client is connected to
// node's camera.
func (r *Reconciler) SetDeviceConnected(node string, connected bool) {
	r.mu.Lock()
	r.devices[node] = connected
	st := r.status[node]
	var cp v1.NodeStatus
	if st != nil {
		st.DeviceConnected = connected
		reason, msg := "Connected", "the camera actor answers"
		if !connected {
			reason, msg = "Disconnected", "no connection to the camera actor"
		}
		st.SetCondition(v1.ConditionDeviceConnected, connected, reason, msg, r.opts.Now())
		cp = copyStatus(st)
	}
	r.mu.Unlock()
	if st != nil && r.opts.OnStatus != nil {
		r.opts.OnStatus(cp)
	}
}

// Status returns a copy of every node's status, enabled nodes first in
// their configured order.
func (r *Reconciler) Status() []v1.NodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	enabled := r.enabledLocked()
	var out []v1.NodeStatus
	for _, n := range union(enabled, r.spec.NodeNames()) {
		on := slices.Contains(enabled, n)
		st, seen := r.status[n]
		switch {
		case seen:
			cp := copyStatus(st)
			cp.Enabled = on
			out = append(out, cp)
		case on:
			cp := r.freshStatusLocked(n)
			cp.Enabled = true
			out = append(out, cp)
		}
	}
	return out
}

// NodeStatus returns one node's status.
func (r *Reconciler) NodeStatus(node string) (v1.NodeStatus, bool) {
	for _, st := range r.Status() {
		if st.Name == node {
			return st, true
		}
	}
	return v1.NodeStatus{}, false
}

// freshStatusLocked is the status of a node never observed yet.
func (r *Reconciler) freshStatusLocked(node string) v1.NodeStatus {
	n := r.spec.Nodes[node]
	return v1.NodeStatus{
		Name: node, Host: n.Host, DockerHost: n.DockerClient,
		Image: v1.ImageStatus{Ref: r.spec.ImageRef()},
	}
}

func copyStatus(st *v1.NodeStatus) v1.NodeStatus {
	cp := *st
	cp.Volumes = slices.Clone(st.Volumes)
	cp.Conditions = slices.Clone(st.Conditions)
	cp.LastActions = slices.Clone(st.LastActions)
	if st.Container != nil {
		c := *st.Container
		cp.Container = &c
	}
	return cp
}

// Run reconciles continuously until ctx ends: one worker per node, engine
// event watches, and a periodic resync.
func (r *Reconciler) Run(ctx context.Context) error {
	r.mu.Lock()
	r.runCtx = ctx
	workers := max(4, len(r.spec.Nodes))
	r.mu.Unlock()

	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx)
		}()
	}
	r.syncWatchers()
	for _, n := range r.Enabled() {
		r.queue.Add(n)
	}
	go r.resync(ctx)
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
	r.mu.Lock()
	for _, ne := range r.engines {
		if ne.stopWatch != nil {
			ne.stopWatch()
		}
		_ = ne.eng.Close()
	}
	r.engines = map[string]*nodeEngine{}
	r.mu.Unlock()
	return nil
}

func (r *Reconciler) resync(ctx context.Context) {
	for {
		r.mu.Lock()
		d := r.spec.ResyncInterval.D()
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		for _, n := range r.Enabled() {
			r.queue.Add(n)
		}
	}
}

func (r *Reconciler) worker(ctx context.Context) {
	for {
		node, ok := r.queue.Get()
		if !ok {
			return
		}
		r.processNode(ctx, node)
		r.queue.Done(node)
	}
}

func (r *Reconciler) processNode(ctx context.Context, node string) {
	r.mu.Lock()
	started := r.gen[node]
	force := r.force[node]
	delete(r.force, node)
	r.mu.Unlock()

	if !r.isEnabled(node) {
		// A disabled node is left as it is; Status reports it disabled.
		r.resolveWaiters(node, started, nil, nil, true)
		return
	}
	taken, err := r.Reconcile(ctx, node, PlanOptions{Force: force})
	if err != nil {
		if force && len(taken.Actions) == 0 {
			r.mu.Lock()
			r.force[node] = true // a failed forced pass is retried forced
			r.mu.Unlock()
		}
		d := r.queue.AddRateLimited(node)
		r.log.Error(err, "reconcile failed", "node", node, "retryIn", d.Round(time.Millisecond).String())
		r.resolveWaiters(node, started, taken.Actions, err, false)
		return
	}
	r.queue.Forget(node)
	r.resolveWaiters(node, started, taken.Actions, nil, true)
}

// resolveWaiters ends (on success) or updates (on failure) the waits of
// every Converge request made before this reconcile started.
func (r *Reconciler) resolveWaiters(node string, started uint64, actions []Action, err error, success bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keep []*waiter
	for _, w := range r.waiters[node] {
		if w.gen > started {
			keep = append(keep, w)
			continue
		}
		w.lastErr = err
		for _, a := range actions {
			if !slices.Contains(w.actions, a) {
				w.actions = append(w.actions, a)
			}
		}
		if success {
			close(w.done)
		} else {
			keep = append(keep, w)
		}
	}
	r.waiters[node] = keep
}

// Converge asks for a reconcile of each node now (forced: volumes and
// container recreated) and waits until each has converged or ctx ends. It
// needs Run to be running. The result maps each node to nil or the last
// error seen.
func (r *Reconciler) Converge(ctx context.Context, nodes []string, force bool) map[string]error {
	out := map[string]error{}
	for _, res := range r.ConvergeResults(ctx, nodes, force) {
		out[res.Node] = nil
		if res.Error != "" {
			out[res.Node] = errors.New(res.Error)
		}
	}
	return out
}

// ConvergeResults is Converge with, for each node, the actions the
// daemon took for this request and the node's status afterwards.
func (r *Reconciler) ConvergeResults(ctx context.Context, nodes []string, force bool) []NodeResult {
	type pending struct {
		node string
		w    *waiter
	}
	var ws []pending
	r.mu.Lock()
	for _, n := range nodes {
		r.gen[n]++
		w := &waiter{gen: r.gen[n], done: make(chan struct{})}
		r.waiters[n] = append(r.waiters[n], w)
		if force {
			r.force[n] = true
		}
		ws = append(ws, pending{n, w})
	}
	r.mu.Unlock()
	for _, p := range ws {
		r.queue.Forget(p.node) // an operator's request does not wait out a backoff
		r.queue.Add(p.node)
	}
	out := make([]NodeResult, 0, len(ws))
	for _, p := range ws {
		res := NodeResult{Node: p.node}
		select {
		case <-p.w.done:
		case <-ctx.Done():
		}
		r.mu.Lock()
		select {
		case <-p.w.done:
		default:
			r.waiters[p.node] = slices.DeleteFunc(r.waiters[p.node], func(w *waiter) bool { return w == p.w })
			err := p.w.lastErr
			if err == nil {
				err = fmt.Errorf("%s: not converged: %w", p.node, ctx.Err())
			}
			res.Error = err.Error()
		}
		res.Actions = slices.Clone(p.w.actions)
		r.mu.Unlock()
		res.Status, _ = r.NodeStatus(p.node)
		out = append(out, res)
	}
	return out
}

// engineFor returns node's engine, opening it (again, if its address
// changed).
func (r *Reconciler) engineFor(node, address string) (Engine, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ne, ok := r.engines[node]; ok {
		if ne.address == address {
			return ne.eng, nil
		}
		if ne.stopWatch != nil {
			ne.stopWatch()
		}
		_ = ne.eng.Close()
		delete(r.engines, node)
	}
	eng, err := r.opts.NewEngine(node, address)
	if err != nil {
		return nil, err
	}
	r.engines[node] = &nodeEngine{address: address, eng: eng}
	return eng, nil
}

// Observe reads a node's actual state. It changes nothing.
func (r *Reconciler) Observe(ctx context.Context, node string) (Desired, Observed, *v1.NodeStatus, error) {
	want, eng, st, err := r.probe(ctx, node)
	if err != nil {
		return want, Observed{}, st, err
	}
	have, err := r.inspect(ctx, eng, node, want, st)
	return want, have, st, err
}

// probe renders what node should have, opens its engine and checks that
// the node and its engine answer, recording both in a copy of its status.
func (r *Reconciler) probe(ctx context.Context, node string) (Desired, Engine, *v1.NodeStatus, error) {
	spec, rev := r.Spec()
	st := &v1.NodeStatus{}
	r.mu.Lock()
	if old, ok := r.status[node]; ok {
		*st = copyStatus(old)
	} else {
		*st = r.freshStatusLocked(node)
	}
	st.DeviceConnected = r.devices[node]
	r.mu.Unlock()

	n, ok := spec.Nodes[node]
	if !ok {
		return Desired{}, nil, st, fmt.Errorf("%s: node is not configured", node)
	}
	now := r.opts.Now()
	st.Name, st.Host, st.DockerHost = node, n.Host, n.DockerClient
	st.Enabled = r.isEnabled(node)
	st.ObservedRevision, st.ObservedAt = rev, now
	st.Image.Ref = spec.ImageRef()

	ctr, err := render.ForNode(spec, node)
	if err != nil {
		return Desired{}, nil, st, err
	}
	want := Desired{Container: ctr, Volumes: render.Volumes(spec), PullPolicy: spec.PullPolicy}

	eng, err := r.engineFor(node, n.DockerClient)
	if err != nil {
		return want, nil, st, fmt.Errorf("%s: engine %s: %w", node, n.DockerClient, err)
	}
	// Host ping and engine ping, concurrently: a dead node costs one
	// timeout, not two.
	var pingErr, engErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		pingErr = r.opts.Ping(ctx, n.Host, spec.PingTimeout.D(), fallbackPort(n))
	}()
	go func() { defer wg.Done(); engErr = eng.Ping(ctx) }()
	wg.Wait()
	st.Reachable, st.DockerAlive = pingErr == nil, engErr == nil
	if pingErr != nil {
		st.SetCondition(v1.ConditionReachable, false, "NoPingReply", fmt.Sprintf("Node %s is not pinging back: %v", n.Host, pingErr), now)
	} else {
		st.SetCondition(v1.ConditionReachable, true, "PingReply", "node answers ping", now)
	}
	if engErr != nil {
		st.SetCondition(v1.ConditionEngineReady, false, "EngineUnreachable", fmt.Sprintf("Docker Engine %s is not answering: %v", n.DockerClient, engErr), now)
		return want, nil, st, fmt.Errorf("%s: docker engine %s not answering: %w", node, n.DockerClient, engErr)
	}
	st.SetCondition(v1.ConditionEngineReady, true, "EngineAnswers", "engine answers /_ping", now)
	return want, eng, st, nil
}

// inspect reads the node's containers, volumes and image from its engine
// and records them in st. It changes nothing on the node.
func (r *Reconciler) inspect(ctx context.Context, eng Engine, node string, want Desired, st *v1.NodeStatus) (Observed, error) {
	ctr := want.Container
	have := Observed{Volumes: map[string]engine.Volume{}}
	var err error
	have.Containers, err = eng.ListContainers(ctx, map[string]string{render.LabelManaged: "true", render.LabelNode: node}, ctr.Name)
	if err != nil {
		return have, fmt.Errorf("%s: list containers: %w", node, err)
	}
	st.Volumes = st.Volumes[:0]
	for _, v := range want.Volumes {
		got, err := eng.InspectVolume(ctx, v.Name)
		switch {
		case engine.IsNotFound(err):
			st.Volumes = append(st.Volumes, v1.VolumeStatus{Name: v.Name})
		case err != nil:
			return have, fmt.Errorf("%s: inspect volume %s: %w", node, v.Name, err)
		default:
			have.Volumes[v.Name] = got
			st.Volumes = append(st.Volumes, v1.VolumeStatus{Name: v.Name, Exists: true, Device: got.Options["device"]})
		}
	}
	img, err := eng.InspectImage(ctx, ctr.Config.Image)
	switch {
	case engine.IsNotFound(err):
		st.Image.Present, st.Image.ID = false, ""
	case err != nil:
		return have, fmt.Errorf("%s: inspect image %s: %w", node, ctr.Config.Image, err)
	default:
		have.Image = &img
		st.Image.Present, st.Image.ID = true, img.ID
	}
	r.recordObserved(st, want, have, r.opts.Now())
	return have, nil
}

// recordObserved fills the status fields and conditions that follow from
// an observation.
func (r *Reconciler) recordObserved(st *v1.NodeStatus, want Desired, have Observed, now time.Time) {
	missing := ""
	for _, v := range st.Volumes {
		if !v.Exists {
			missing = v.Name
			break
		}
	}
	if missing != "" {
		st.SetCondition(v1.ConditionVolumesReady, false, "VolumeMissing", "volume "+missing+" does not exist", now)
	} else {
		st.SetCondition(v1.ConditionVolumesReady, true, "VolumesExist", "every volume exists", now)
	}
	if have.Image == nil {
		st.SetCondition(v1.ConditionImageReady, false, "ImageNotPresent", "image "+st.Image.Ref+" is not on the node", now)
	} else {
		st.SetCondition(v1.ConditionImageReady, true, "ImagePresent", "image "+st.Image.Ref+" is on the node", now)
	}
	st.Container = nil
	var keeper *engine.Container
	for i := range have.Containers {
		if have.Containers[i].Name == want.Container.Name {
			keeper = &have.Containers[i]
			break
		}
	}
	switch {
	case keeper == nil && len(have.Containers) == 0:
		st.SetCondition(v1.ConditionContainerRunning, false, "NoContainer", "no container "+want.Container.Name, now)
	case keeper == nil:
		st.SetCondition(v1.ConditionContainerRunning, false, "StrayContainers", fmt.Sprintf("%d managed containers, none named %s", len(have.Containers), want.Container.Name), now)
	default:
		st.Container = &v1.ContainerStatus{
			ID: keeper.ID, Name: keeper.Name, State: keeper.State, Image: keeper.Image, ImageID: keeper.ImageID,
			SpecHash: keeper.Labels[render.LabelSpecHash], RestartCount: keeper.RestartCount,
			StartedAt: keeper.StartedAt, Count: len(have.Containers),
		}
		switch {
		case !keeper.Running:
			st.SetCondition(v1.ConditionContainerRunning, false, "ContainerNotRunning", stoppedReason(*keeper), now)
		case len(have.Containers) > 1:
			st.SetCondition(v1.ConditionContainerRunning, false, "SeveralContainers", fmt.Sprintf("%d containers are running for this node", len(have.Containers)), now)
		case st.Container.SpecHash != want.Container.Hash:
			st.SetCondition(v1.ConditionContainerRunning, false, "SpecChanged", "the running container does not match the spec", now)
		default:
			st.SetCondition(v1.ConditionContainerRunning, true, "Running", "container "+st.Container.ShortID()+" runs the current spec", now)
		}
	}
}

// Plan observes a node and returns what a reconcile would do, changing
// nothing (reconcile --dry-run).
func (r *Reconciler) Plan(ctx context.Context, node string, opts PlanOptions) (Plan, *v1.NodeStatus, error) {
	want, have, st, err := r.Observe(ctx, node)
	if err != nil {
		return Plan{Node: node}, st, err
	}
	return PlanNode(node, want, have, opts), st, nil
}

// Reconcile converges one node once: observe, plan, act, record status.
// It returns the actions taken (on failure, those before the failing
// one). It is idempotent and safe to call at any time, but the caller
// must not run two reconciles of one node at once (Run's queue
// guarantees that).
func (r *Reconciler) Reconcile(ctx context.Context, node string, opts PlanOptions) (Plan, error) {
	taken := Plan{Node: node}
	want, eng, st, err := r.probe(ctx, node)
	if err != nil {
		r.finish(node, st, nil, err)
		return taken, err
	}
	have, err := r.inspect(ctx, eng, node, want, st)
	if err != nil {
		r.finish(node, st, nil, err)
		return taken, err
	}
	plan := PlanNode(node, want, have, opts)
	if plan.Empty() {
		r.finish(node, st, nil, nil)
		return taken, nil
	}
	if plan.Disruptive() {
		release, err := r.acquireRollout(ctx, node)
		if err != nil {
			r.finish(node, st, nil, err)
			return taken, err
		}
		defer release()
	}
	var done []string
	for _, a := range plan.Actions {
		r.log.Info("reconcile", "node", node, "action", string(a.Type), "target", a.Target, "reason", a.Reason)
		if err := r.execute(ctx, eng, node, want, a); err != nil {
			err = fmt.Errorf("%s: %s %s: %w", node, a.Type, a.Target, err)
			r.finish(node, st, done, err)
			return taken, err
		}
		taken.Actions = append(taken.Actions, a)
		done = append(done, a.String())
	}
	// Inspect the result, so status says what is, not what was hoped.
	// The node and engine just answered: no need to ping them again.
	if _, err = r.inspect(ctx, eng, node, want, st); err == nil && !st.Ready() {
		err = fmt.Errorf("%s: not converged after acting: %s", node, st.Condition(v1.ConditionContainerRunning).Message)
	}
	r.finish(node, st, done, err)
	return taken, err
}

func (r *Reconciler) acquireRollout(ctx context.Context, node string) (func(), error) {
	r.mu.Lock()
	sem := r.rollout
	r.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	default:
	}
	r.log.Info("waiting for another node's rollout to finish", "node", node)
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// finish records a reconcile's outcome in the node's status.
func (r *Reconciler) finish(node string, st *v1.NodeStatus, actions []string, err error) {
	now := r.opts.Now()
	if err != nil {
		st.LastError = err.Error()
		st.SetCondition(v1.ConditionConverged, false, "ReconcileFailed", err.Error(), now)
	} else {
		st.LastError = ""
		st.SetCondition(v1.ConditionConverged, true, "Converged", "nothing left to do", now)
	}
	if len(actions) > 0 {
		st.LastActions = actions
	}
	r.mu.Lock()
	st.DeviceConnected = r.devices[node]
	r.status[node] = st
	cp := copyStatus(st)
	r.mu.Unlock()
	if r.opts.OnStatus != nil {
		r.opts.OnStatus(cp)
	}
}

// execute runs one action against the engine.
func (r *Reconciler) execute(ctx context.Context, eng Engine, node string, want Desired, a Action) error {
	switch a.Type {
	case ActionPullImage:
		return eng.PullImage(ctx, a.Target)
	case ActionRemoveContainer:
		return eng.RemoveContainer(ctx, a.ID, true)
	case ActionRemoveVolume:
		return eng.RemoveVolume(ctx, a.Target, true)
	case ActionCreateVolume:
		for _, v := range want.Volumes {
			if v.Name == a.Target {
				_, err := eng.CreateVolume(ctx, v.Name, v.Driver, v.Opts, v.Labels)
				return err
			}
		}
		return fmt.Errorf("volume %s is not in the spec", a.Target)
	case ActionRecreateContainer:
		if err := eng.RemoveContainer(ctx, a.ID, true); err != nil {
			return err
		}
		return r.createAndStart(ctx, eng, node, want)
	case ActionCreateContainer:
		return r.createAndStart(ctx, eng, node, want)
	case ActionStartContainer:
		if err := eng.StartContainer(ctx, a.ID); err != nil {
			return err
		}
		return r.waitReady(ctx, eng, node, a.ID)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}

func (r *Reconciler) createAndStart(ctx context.Context, eng Engine, node string, want Desired) error {
	c := want.Container
	id, err := eng.CreateContainer(ctx, c.Name, c.Config, c.HostConfig)
	if engine.IsConflict(err) {
		// A container of that name appeared since we looked, or Docker
		// is still removing the old one: remove it, wait for the name
		// to be free, and try once more.
		if err := r.waitNameFree(ctx, eng, c.Name); err != nil {
			return err
		}
		id, err = eng.CreateContainer(ctx, c.Name, c.Config, c.HostConfig)
	}
	if err != nil {
		return err
	}
	if err := eng.StartContainer(ctx, id); err != nil {
		return err
	}
	return r.waitReady(ctx, eng, node, id)
}

// waitNameFree removes any container called name and waits until it is
// gone.
func (r *Reconciler) waitNameFree(ctx context.Context, eng Engine, name string) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ReadyTimeout)
	defer cancel()
	for delay := 20 * time.Millisecond; ; delay = min(delay*2, 500*time.Millisecond) {
		cs, err := eng.ListContainers(ctx, nil, name)
		if err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		if err := eng.RemoveContainer(ctx, cs[0].ID, true); err != nil && !engine.IsConflict(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container name %s still in use after %s", name, r.opts.ReadyTimeout)
		case <-time.After(delay):
		}
	}
}

// waitReady waits until the container runs and, with host networking,
// its camera port accepts connections.
func (r *Reconciler) waitReady(ctx context.Context, eng Engine, node, id string) error {
	spec, _ := r.Spec()
	ctx, cancel := context.WithTimeout(ctx, r.opts.ReadyTimeout)
	defer cancel()
	n := spec.Nodes[node]
	addr := net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, time.Second) {
		c, err := eng.InspectContainer(ctx, id)
		if err != nil {
			return fmt.Errorf("waiting for container to run: %w", err)
		}
		if !c.Running && c.State != "created" && c.State != "restarting" {
			return fmt.Errorf("container %s right after start (exit code %d)", c.State, c.ExitCode)
		}
		if c.Running && (spec.NetworkMode != "host" || r.opts.Probe(ctx, addr) == nil) {
			if r.opts.OnContainerStarted != nil {
				r.opts.OnContainerStarted(node)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("camera did not answer on %s within %s", addr, r.opts.ReadyTimeout)
		case <-time.After(delay):
		}
	}
}

// syncWatchers starts an event watch for each enabled node that has none
// and stops those of nodes no longer enabled. Only while Run runs.
func (r *Reconciler) syncWatchers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx == nil {
		return
	}
	enabled := r.enabledLocked()
	for node, ne := range r.engines {
		if !slices.Contains(enabled, node) || r.spec.Nodes[node].DockerClient != ne.address {
			if ne.stopWatch != nil {
				ne.stopWatch()
			}
			_ = ne.eng.Close()
			delete(r.engines, node)
		}
	}
	for _, node := range enabled {
		addr := r.spec.Nodes[node].DockerClient
		ne, ok := r.engines[node]
		if !ok {
			eng, err := r.opts.NewEngine(node, addr)
			if err != nil {
				r.log.Error(err, "cannot open engine", "node", node, "address", addr)
				continue
			}
			ne = &nodeEngine{address: addr, eng: eng}
			r.engines[node] = ne
		}
		if ne.stopWatch == nil {
			ctx, cancel := context.WithCancel(r.runCtx)
			ne.stopWatch = cancel
			go r.watch(ctx, node, ne.eng)
		}
	}
}

// watch enqueues node on every engine event about its container, volumes
// or image, and when the event stream breaks (the engine died).
func (r *Reconciler) watch(ctx context.Context, node string, eng Engine) {
	delay := time.Second
	for ctx.Err() == nil {
		evs, errs := eng.Events(ctx)
		connected := time.Now()
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-evs:
				if !ok {
					break stream
				}
				if r.relevant(node, ev) {
					r.log.V(1).Info("engine event", "node", node, "type", ev.Type, "action", ev.Action, "name", ev.Name)
					r.queue.Add(node)
				}
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				r.log.V(1).Info("event stream ended", "node", node, "error", fmt.Sprint(err))
				break stream
			}
		}
		r.queue.Add(node)
		if time.Since(connected) > 30*time.Second {
			delay = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (r *Reconciler) relevant(node string, ev engine.Event) bool {
	spec, _ := r.Spec()
	switch ev.Type {
	case "container":
		if ev.Labels[render.LabelNode] != node && ev.Name != spec.ContainerNameFor(node) {
			return false
		}
		switch ev.Action {
		case "die", "destroy", "stop", "kill", "oom", "pause", "start", "create":
			return true
		}
	case "volume":
		_, ours := spec.Volumes[ev.Name]
		return ours && (ev.Action == "destroy" || ev.Action == "remove")
	case "image":
		return ev.Action == "delete" || ev.Action == "untag"
	}
	return false
}

// fallbackPort is the port a TCP reachability check uses when ICMP is not
// permitted: the engine's TCP port, else the camera's.
func fallbackPort(n v1.Node) int {
	if u, err := url.Parse(n.DockerClient); err == nil && u.Scheme == "tcp" {
		if p, err := strconv.Atoi(u.Port()); err == nil {
			return p
		}
	}
	return n.Port
}

func tcpProbe(ctx context.Context, address string) error {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return err
	}
	return c.Close()
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
