package actor

import (
	"strings"
	"sync"

	"github.com/sdss/fliswarm/pkg/clu"
)

// busyTracker knows whether a camera is exposing, so that the controller
// never replaces a camera in the middle of an exposure: an `expose` sent
// through fliswarm that has not ended, or the camera's own last
// exposure_state saying it integrates or reads out.
type busyTracker struct {
	mu       sync.Mutex
	exposing map[string]int    // node → expose commands in flight
	state    map[string]string // node → last exposure state reported
}

func newBusyTracker() *busyTracker {
	return &busyTracker{exposing: map[string]int{}, state: map[string]string{}}
}

// busyStates are the camera's exposure states during which it must not be
// disturbed.
var busyStates = map[string]bool{"integrating": true, "reading": true, "post_processing": true}

// isExpose tells a camera command that takes an exposure.
func isExpose(camCmd string) bool {
	verb, _, _ := strings.Cut(strings.TrimSpace(camCmd), " ")
	return verb == "expose"
}

// begin and end bracket an exposure command sent to node.
func (b *busyTracker) begin(node string) {
	b.mu.Lock()
	b.exposing[node]++
	b.mu.Unlock()
}

func (b *busyTracker) end(node string) {
	b.mu.Lock()
	if b.exposing[node]--; b.exposing[node] <= 0 {
		delete(b.exposing, node)
	}
	b.mu.Unlock()
}

// observe notes the exposure state in a camera's reply.
func (b *busyTracker) observe(node string, r clu.Reply) {
	v, ok := r.Data.Get("exposure_state")
	if !ok {
		return
	}
	var state string
	switch x := v.(type) {
	case clu.Object:
		if s, ok := x.Get("state"); ok {
			state, _ = s.(string)
		}
	case []any:
		if len(x) > 1 {
			state, _ = x[1].(string)
		}
	}
	if state == "" {
		return
	}
	b.mu.Lock()
	b.state[node] = state
	b.mu.Unlock()
}

// busy reports whether node's camera is exposing, and how it is known.
func (b *busyTracker) busy(node string) (bool, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.exposing[node] > 0 {
		return true, "exposing"
	}
	if s := b.state[node]; busyStates[s] {
		return true, "exposing (exposure state " + s + ")"
	}
	return false, ""
}

// forget clears what is known of node's camera (a new camera starts idle).
func (b *busyTracker) forget(node string) {
	b.mu.Lock()
	delete(b.state, node)
	b.mu.Unlock()
}
