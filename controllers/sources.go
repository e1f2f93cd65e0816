package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/render"
)

// Sources turn outside happenings into queued nodes and do nothing else:
// engine events (this file), the periodic resync (Resync), configuration
// changes (NodeController.SetSpec) and operators' requests (Requests).

// EventSource watches the engine of every managed node and enqueues the
// node on each event about its container, volumes or image, when the
// stream breaks, and when it connects again (the engine is back).
type EventSource struct {
	engines *Engines
	store   *Store
	expect  *Expectations
	enqueue func(node string)
	log     logr.Logger
	feeds   *Feeds

	mu      sync.Mutex
	ctx     context.Context
	watches map[string]*watch
	wg      sync.WaitGroup
}

type watch struct {
	conn   v1.EngineConnection
	cancel context.CancelFunc
}

// NewEventSource returns a source that enqueues with enqueue.
func NewEventSource(engines *Engines, store *Store, expect *Expectations, enqueue func(string), log logr.Logger) *EventSource {
	return &EventSource{engines: engines, store: store, expect: expect, enqueue: enqueue, log: log, watches: map[string]*watch{}, feeds: NewFeeds()}
}

// Feeds is what the source knows of each node's stream.
func (s *EventSource) Feeds() *Feeds { return s.feeds }

// Start begins watching every managed node; Sync follows later changes.
// Stop (or ctx ending) ends every watch, and Wait joins them.
func (s *EventSource) Start(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.Sync()
}

// Sync starts a watch for each managed node that has none (or whose
// address changed) and stops the others.
func (s *EventSource) Sync() {
	spec, _ := s.store.Spec()
	enabled := s.store.Enabled()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	want := map[string]v1.EngineConnection{}
	for _, n := range enabled {
		want[n] = spec.EngineConnection(n)
	}
	for n, w := range s.watches {
		if conn, ok := want[n]; !ok || conn != w.conn {
			w.cancel()
			delete(s.watches, n)
		}
	}
	for n, conn := range want {
		if _, ok := s.watches[n]; ok {
			continue
		}
		eng, err := s.engines.Get(n, conn)
		if err != nil {
			s.log.Error(err, "cannot watch the engine", "node", n, "address", conn.Address)
			continue
		}
		ctx, cancel := context.WithCancel(s.ctx)
		s.watches[n] = &watch{conn: conn, cancel: cancel}
		s.wg.Go(func() { s.watch(ctx, n, eng) })
	}
}

// Wait blocks until every watch has returned (after ctx ended).
func (s *EventSource) Wait() { s.wg.Wait() }

// watch follows one engine's events, reconnecting with backoff (1 s
// doubling to maxStreamRetry, back to 1 s after a stream that lasted).
func (s *EventSource) watch(ctx context.Context, node string, eng Engine) {
	retry := &backoff.ExponentialBackOff{InitialInterval: time.Second, Multiplier: 2,
		RandomizationFactor: 0, MaxInterval: maxStreamRetry}
	retry.Reset()
	defer s.feeds.SetUp(node, false)
	for ctx.Err() == nil {
		evs, errs := eng.Events(ctx)
		connected := time.Now()
		// The stream is up once the engine answers: reconcile at once, so
		// that an engine coming back is acted on without waiting for the
		// resync. What the reconciler expected before this stream was
		// open is not coming on it.
		if eng.Ping(ctx) == nil {
			s.feeds.SetUp(node, true)
			s.expect.ForgetNode(node)
			s.enqueue(node)
		}
	stream:
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-evs:
				if !ok {
					break stream
				}
				if kind := s.touches(node, ev); kind != "" {
					s.feeds.Touch(node, kind)
				}
				if s.relevant(node, ev) {
					s.log.V(1).Info("engine event", "node", node, "type", ev.Type, "action", ev.Action, "name", ev.Name)
					s.enqueue(node)
				}
			case err := <-errs:
				if ctx.Err() != nil {
					return
				}
				s.log.V(1).Info("event stream ended", "node", node, "error", fmt.Sprint(err))
				break stream
			}
		}
		s.feeds.SetUp(node, false)
		s.enqueue(node)
		if time.Since(connected) > 30*time.Second {
			retry.Reset()
		}
		t := time.NewTimer(retry.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *EventSource) relevant(node string, ev engine.Event) bool {
	spec, _ := s.store.Spec()
	switch ev.Type {
	case "container":
		if ev.Labels[render.LabelNode] != node && ev.Name != spec.ContainerNameFor(node) {
			return false
		}
		switch ev.Action {
		case "die", "destroy", "stop", "kill", "oom", "pause", "unpause":
			return true
		case "start", "create": // unless the reconciler's own
			return !s.expect.Expected(node, ev.Name, ev.Action)
		}
	case "volume":
		_, ours := spec.Volumes[ev.Name]
		return ours && (ev.Action == "destroy" || ev.Action == "remove")
	case "image":
		return ev.Action == "delete" || ev.Action == "untag"
	}
	return false
}

// touches is the kind of what ev changed that a read of node may have
// kept (see Feeds), "" for none.
func (s *EventSource) touches(node string, ev engine.Event) string {
	spec, _ := s.store.Spec()
	switch ev.Type {
	case "container":
		if ev.Labels[render.LabelNode] != node && ev.Name != spec.ContainerNameFor(node) {
			return ""
		}
		switch ev.Action {
		case "create", "start", "restart", "die", "kill", "oom", "stop", "pause", "unpause", "destroy", "rename", "update":
			return kindContainer
		}
	case "volume":
		if _, ours := spec.Volumes[ev.Name]; ours && ev.Action != "mount" && ev.Action != "unmount" {
			return kindVolume
		}
	case "image":
		return kindImage
	}
	return ""
}

// maxStreamRetry caps the wait between attempts to reopen an engine's event
// stream: an engine that comes back is noticed within that time (an
// attempt against a dead engine costs one refused connection).
const maxStreamRetry = 5 * time.Second

// Resync makes sure every managed node is observed at least every
// resync_interval (read afresh each time), to catch what no event
// announced: at each interval it enqueues the nodes not observed within
// it. A node whose event stream is up (healthy says so; nil: none is)
// needs it every HealthyResyncFactor intervals, at most every
// MaxHealthyResync (never less often than every resync_interval; not for
// an interval under MinStretchedResync): its
// events tell what changes, and its resync is a check; one waiting out a
// crash-loop backoff is not enqueued before its next attempt, which
// observes it.
func Resync(ctx context.Context, store *Store, clock Clock, enqueue func(string), healthy func(string) bool) {
	for {
		spec, _ := store.Spec()
		every := spec.ResyncInterval.D()
		tick := make(chan struct{})
		t := clock.AfterFunc(every, func() { close(tick) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-tick:
		}
		now := clock.Now()
		stretched := every
		if every >= MinStretchedResync {
			stretched = max(every, min(HealthyResyncFactor*every, MaxHealthyResync))
		}
		for _, n := range store.Enabled() {
			st, seen := store.Observed(n)
			due := every
			if healthy != nil && healthy(n) {
				due = stretched
				if cl := st.CrashLoop; cl != nil && cl.NextAttempt.After(now) {
					continue
				}
			}
			// A pass that started just after a tick counts for the
			// interval it started in.
			if seen && now.Sub(st.ObservedAt) < due-every/10 {
				continue
			}
			enqueue(n)
		}
	}
}

// How much the resync of a node whose event stream is up stretches:
// resync_interval times HealthyResyncFactor, at most MaxHealthyResync
// (with the default 30 s: every 2 minutes). A resync_interval shorter
// than MinStretchedResync is kept as configured: whoever shortens it
// asks for that many checks (a test bed's 5 s).
const (
	HealthyResyncFactor = 4
	MaxHealthyResync    = 5 * time.Minute
	MinStretchedResync  = 30 * time.Second
)
