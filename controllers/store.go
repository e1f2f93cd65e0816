package controllers

import (
	"slices"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Store is the one place the state of the swarm is kept and read: the spec
// in force, the actor's enable/disable overrides, each node's last
// observed status, its camera connection (the camera client's state, the
// one source of a camera's readiness, reported through SetCamera) and its
// rollout state. Each writer owns its part, so a reconcile that records
// what it observed never overwrites a camera connection reported
// meanwhile. The actor, the control socket and (later) the status page
// read it; Subscribe tells them when something changed.
type Store struct {
	mu       sync.Mutex
	spec     *v1.Swarm
	revision string
	override map[string]bool // runtime enable (true) / disable (false)
	observed map[string]*v1.NodeStatus
	camera   map[string]cameraState
	rollout  map[string]*v1.RolloutStatus
	pull     map[string]*v1.PullProgress
	disk     map[string]*v1.DiskStatus
	// registryErr is why the last ask to the registry for the image's
	// digest failed ("" when it answered).
	registryErr string
	subs        map[chan string]struct{}
	// events records the transitions the store sees (engine and node
	// down or back, camera connected or lost); nil records nothing.
	events EventRecorder
	// relayOnly: another system (Kubernetes) runs the cameras; a node's
	// status is its camera connection (see SetRelayOnly).
	relayOnly bool
}

type cameraState struct {
	connected bool
	message   string
	// seen: the actor has been connected to the camera since its
	// container was last started (see CameraSeen).
	seen bool
	// at is when the camera client last reported.
	at time.Time
}

// NewStore returns a store holding spec.
func NewStore(spec *v1.Swarm, revision string) *Store {
	return &Store{
		spec: spec, revision: revision,
		override: map[string]bool{},
		observed: map[string]*v1.NodeStatus{},
		camera:   map[string]cameraState{},
		rollout:  map[string]*v1.RolloutStatus{},
		pull:     map[string]*v1.PullProgress{},
		disk:     map[string]*v1.DiskStatus{},
		subs:     map[chan string]struct{}{},
	}
}

// Spec returns the spec in force and its revision.
func (s *Store) Spec() (*v1.Swarm, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spec, s.revision
}

// SetSpec replaces the spec and returns the nodes managed before and
// after, so that the caller can enqueue both.
func (s *Store) SetSpec(spec *v1.Swarm, revision string) (before, after []string) {
	s.mu.Lock()
	before = s.enabledLocked()
	s.spec, s.revision = spec, revision
	after = s.enabledLocked()
	s.mu.Unlock()
	s.notify("")
	return before, after
}

// Enabled returns the nodes being managed: the spec's enabled nodes with
// the actor's enable/disable overrides applied, in order.
func (s *Store) Enabled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.enabledLocked()
}

func (s *Store) enabledLocked() []string {
	var out []string
	for _, n := range s.spec.EnabledNodes {
		if on, ok := s.override[n]; !ok || on {
			out = append(out, n)
		}
	}
	for _, n := range s.spec.NodeNames() {
		if s.override[n] && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// IsEnabled reports whether node is managed now.
func (s *Store) IsEnabled(node string) bool {
	return slices.Contains(s.Enabled(), node)
}

// SetEnabled overrides whether a configured node is managed; it returns
// false when the node is not configured.
func (s *Store) SetEnabled(node string, on bool) bool {
	s.mu.Lock()
	if _, ok := s.spec.Nodes[node]; !ok {
		s.mu.Unlock()
		return false
	}
	s.override[node] = on
	s.mu.Unlock()
	s.notify(node)
	return true
}

// SetRelayOnly says that fliswarm only relays (fliswarm start
// --relay-only): another system runs the camera containers, nothing
// observes the nodes' engines, and a node's status is its camera
// connection: Ready when fliswarm's client is connected to the camera,
// CameraNotConnected otherwise. Call it before anything reads the store.
func (s *Store) SetRelayOnly() {
	s.mu.Lock()
	s.relayOnly = true
	s.mu.Unlock()
}

// RecordEventsTo makes the store record the transitions it sees; call it
// before anything writes to the store.
func (s *Store) RecordEventsTo(rec EventRecorder) {
	s.mu.Lock()
	s.events = rec
	s.mu.Unlock()
}

// SetObserved records what a reconcile observed of a node.
func (s *Store) SetObserved(st v1.NodeStatus) {
	cp := copyStatus(&st)
	s.mu.Lock()
	prev := s.observed[st.Name]
	s.observed[st.Name] = &cp
	rec := s.events
	s.mu.Unlock()
	if rec != nil {
		recordTransitions(rec, prev, &cp)
	}
	s.notify(st.Name)
}

// Observed returns a copy of the node's last observed status.
func (s *Store) Observed(node string) (v1.NodeStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.observed[node]
	if !ok {
		return v1.NodeStatus{}, false
	}
	return copyStatus(st), true
}

// SetCamera records whether fliswarm's client of the node's camera is
// connected to it (it checked the camera's identity and that it answers)
// and, when not, why (empty for no particular reason). It is the one
// source of a camera's readiness.
func (s *Store) SetCamera(node string, connected bool, message string) {
	s.mu.Lock()
	old := s.camera[node]
	s.camera[node] = cameraState{connected: connected, message: message, seen: old.seen || connected, at: time.Now()}
	rec := s.events
	s.mu.Unlock()
	if rec != nil && old.connected != connected {
		if connected {
			rec.Event(node, v1.EventNormal, v1.ReasonCameraConnected, "fliswarm's client is connected to the camera")
		} else {
			rec.Event(node, v1.EventWarning, v1.ReasonCameraLost, "fliswarm's client lost the camera"+suffix(message))
		}
	}
	if old.connected != connected || old.message != message {
		s.notify(node)
	}
}

// CameraConnected reports the actor's connection to the node's camera.
func (s *Store) CameraConnected(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camera[node].connected
}

// CameraMessage is why the node's camera client is not connected, "" when
// it is or when no reason was given.
func (s *Store) CameraMessage(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camera[node].message
}

// CameraSeen reports whether the actor has been connected to the node's
// camera since ContainerStarted: whether the camera came up at all before
// it stopped.
func (s *Store) CameraSeen(node string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.camera[node].seen
}

// ContainerStarted records that the node's camera container was just
// started: its camera has not been seen since, and a connection reported
// before (to the camera it replaced) does not count for it.
func (s *Store) ContainerStarted(node string) {
	s.mu.Lock()
	cs := s.camera[node]
	changed := cs.connected
	cs.seen, cs.connected = false, false
	s.camera[node] = cs
	s.mu.Unlock()
	if changed {
		s.notify(node)
	}
}

// SetRollout records a node's part in a rollout; nil clears it.
func (s *Store) SetRollout(node string, rs *v1.RolloutStatus) {
	s.mu.Lock()
	s.rollout[node] = rs
	s.mu.Unlock()
	s.notify(node)
}

// SetPull records the progress of a pull on node; nil clears it.
func (s *Store) SetPull(node string, p *v1.PullProgress) {
	s.mu.Lock()
	s.pull[node] = p
	s.mu.Unlock()
	s.notify(node)
}

// SetDisk records a node's engine disk use as last checked.
func (s *Store) SetDisk(node string, d v1.DiskStatus) {
	s.mu.Lock()
	s.disk[node] = &d
	s.mu.Unlock()
	s.notify(node)
}

// SetRegistryError records why the last ask to the registry for the
// image's digest failed; "" when it answered.
func (s *Store) SetRegistryError(msg string) {
	s.mu.Lock()
	changed := s.registryErr != msg
	s.registryErr = msg
	s.mu.Unlock()
	if changed {
		s.notify("")
	}
}

// Status returns every node's status, enabled nodes first in their
// configured order, each with its readiness evaluated.
func (s *Store) Status() []v1.NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	enabled := s.enabledLocked()
	var out []v1.NodeStatus
	for _, n := range union(enabled, s.spec.NodeNames()) {
		on := slices.Contains(enabled, n)
		if _, seen := s.observed[n]; !seen && !on {
			continue
		}
		out = append(out, s.composeLocked(n, on))
	}
	return out
}

// NodeStatus returns one node's status.
func (s *Store) NodeStatus(node string) (v1.NodeStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.spec.Nodes[node]; !ok {
		if _, seen := s.observed[node]; !seen {
			return v1.NodeStatus{}, false
		}
	}
	return s.composeLocked(node, slices.Contains(s.enabledLocked(), node)), true
}

func (s *Store) composeLocked(node string, enabled bool) v1.NodeStatus {
	var st v1.NodeStatus
	if o, ok := s.observed[node]; ok {
		st = copyStatus(o)
	} else {
		n := s.spec.Nodes[node]
		st = v1.NodeStatus{Name: node, Host: n.Host, DockerHost: n.DockerClient, Image: v1.ImageStatus{Ref: s.spec.ImageRef()}}
	}
	st.Enabled = enabled
	st.Image.RegistryError = ""
	if s.spec.ImageUpdateInterval > 0 {
		st.Image.RegistryError = s.registryErr
	}
	cs := s.camera[node]
	camera := cs.connected
	st.CameraMessage = cs.message
	reason, msg := "Connected", "the camera actor answers"
	if !camera {
		reason, msg = "Disconnected", "no connection to the camera actor"
		if cs.message != "" {
			msg = cs.message
		}
	}
	st.SetCondition(v1.ConditionDeviceConnected, camera, reason, msg, st.ObservedAt)
	st.DeviceConnected = camera
	if rs := s.rollout[node]; rs != nil {
		cp := *rs
		st.Rollout = &cp
	}
	if p := s.pull[node]; p != nil {
		cp := *p
		st.Pull = &cp
	}
	if d := s.disk[node]; d != nil {
		cp := *d
		st.Disk = &cp
	}
	st.SetPhase(camera)
	if s.relayOnly && enabled {
		st.ObservedAt = cs.at
		st.Phase, st.Message = v1.PhaseReady, "the camera answers (its container is not run by this fliswarm: relay only)"
		if !camera {
			st.Phase, st.Message = v1.PhaseCameraNotConnected, msg
		}
		if cs.at.IsZero() {
			st.Phase, st.Message = v1.PhaseNotObserved, "the camera client has not reported yet"
		}
	}
	return st
}

// Subscribe returns a channel that receives the name of each node whose
// status changed ("" for a change that concerns every node). A slow
// reader misses intermediate notifications, never the latest change:
// the channel holds one pending name, and a change that finds it full is
// merged into "". cancel ends the subscription.
func (s *Store) Subscribe() (<-chan string, func()) {
	ch := make(chan string, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Store) notify(node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- node:
		default:
			// Full: replace the pending name with "" (everything).
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- "":
			default:
			}
		}
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
	if st.CrashLoop != nil {
		c := *st.CrashLoop
		c.LastLog = slices.Clone(c.LastLog)
		cp.CrashLoop = &c
	}
	if st.Rollout != nil {
		r := *st.Rollout
		cp.Rollout = &r
	}
	if st.Pull != nil {
		p := *st.Pull
		cp.Pull = &p
	}
	if st.Disk != nil {
		d := *st.Disk
		cp.Disk = &d
	}
	return cp
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
