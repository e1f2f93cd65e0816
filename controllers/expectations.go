package controllers

import (
	"sync"
	"time"
)

// Expectations remembers the engine events the reconciler's own actions
// are about to cause (a camera it starts gives a `start` event, one it
// creates a `create`), so that the event source does not reconcile the
// node once more for them: the reconcile that acted already knows, and
// comes back by itself while it waits for the camera. It is the
// expectations of Kubernetes' ReplicaSet controller, reduced to counting
// events by node, container name and action.
//
// An expectation is used up by its event or, when the event never comes
// (the action failed, the stream was down), ends after expectationTTL; an
// event nobody expected (an operator's `docker start`) reconciles as
// before.
type Expectations struct {
	clock Clock
	mu    sync.Mutex
	m     map[expectKey][]time.Time // deadlines, oldest first
}

type expectKey struct{ node, name, action string }

// expectationTTL bounds how long an expected event is waited for.
const expectationTTL = 30 * time.Second

// NewExpectations returns an empty set of expectations.
func NewExpectations(clock Clock) *Expectations {
	return &Expectations{clock: clock, m: map[expectKey][]time.Time{}}
}

// Expect records that one event action on the container named name of
// node is about to come from the reconciler's own doing.
func (e *Expectations) Expect(node, name, action string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := expectKey{node, name, action}
	e.m[k] = append(e.live(k), e.clock.Now().Add(expectationTTL))
}

// Forget drops an expectation whose action failed.
func (e *Expectations) Forget(node, name, action string) {
	e.consume(node, name, action)
}

// ForgetNode drops every expectation of node: its event stream has just
// (re)connected, so any event expected before that was lost with the old
// stream (or came before the first), and an expectation left waiting for
// it would take the place of the next event nobody expected.
func (e *Expectations) ForgetNode(node string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.m {
		if k.node == node {
			delete(e.m, k)
		}
	}
}

// Expected reports whether the event was expected, using the expectation
// up.
func (e *Expectations) Expected(node, name, action string) bool {
	return e.consume(node, name, action)
}

func (e *Expectations) consume(node, name, action string) bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := expectKey{node, name, action}
	live := e.live(k)
	if len(live) == 0 {
		delete(e.m, k)
		return false
	}
	if len(live) == 1 {
		delete(e.m, k)
	} else {
		e.m[k] = live[1:]
	}
	return true
}

// live drops k's expired expectations and returns the others.
func (e *Expectations) live(k expectKey) []time.Time {
	now := e.clock.Now()
	ds := e.m[k]
	for len(ds) > 0 && !now.Before(ds[0]) {
		ds = ds[1:]
	}
	return ds
}
