package events

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// DefaultSize is how many events are kept for each node when the
// configuration does not say.
const DefaultSize = v1.DefaultEventsPerNode

// followBuffer is how many events a follower may fall behind before it is
// cut off (and told so): a reader that stopped reading never holds the
// recorder up.
const followBuffer = 1024

// Options configure a Recorder.
type Options struct {
	// Size is how many events are kept per node; default DefaultSize.
	Size int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Count is called once for each event recorded (a repeat included),
	// for the metrics; nil counts nothing.
	Count func(node, typ, reason string)
}

// Recorder keeps the events. A nil *Recorder records nothing, so that
// parts built without one (tests, the one-shot reconcile) need no checks.
type Recorder struct {
	mu    sync.Mutex
	size  int
	now   func() time.Time
	count func(node, typ, reason string)
	seq   uint64
	rings map[string][]entry // by node ("" for fliswarm), oldest first
	subs  map[*Follower]struct{}
}

// entry is an event and the order it was last recorded in.
type entry struct {
	ev  v1.Event
	seq uint64
}

// New returns an empty recorder.
func New(opts Options) *Recorder {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Recorder{size: opts.Size, now: opts.Now, count: opts.Count,
		rings: map[string][]entry{}, subs: map[*Follower]struct{}{}}
}

// SetSize changes how many events are kept per node (a new configuration);
// the oldest are dropped when it shrinks. n ≤ 0 means DefaultSize.
func (r *Recorder) SetSize(n int) {
	if r == nil {
		return
	}
	if n <= 0 {
		n = DefaultSize
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.size = n
	for node, ring := range r.rings {
		if len(ring) > n {
			r.rings[node] = slices.Clone(ring[len(ring)-n:])
		}
	}
}

// Event records that something happened to node ("" for fliswarm as a
// whole). An event equal in type, reason and message to the node's last
// one is counted on it instead of added (a crash loop is one line that
// grows).
func (r *Recorder) Event(node, typ, reason, message string) {
	if r == nil {
		return
	}
	now := r.now().UTC()
	r.mu.Lock()
	r.seq++
	ring := r.rings[node]
	var ev v1.Event
	if n := len(ring); n > 0 && ring[n-1].ev.Type == typ && ring[n-1].ev.Reason == reason && ring[n-1].ev.Message == message {
		last := &ring[n-1]
		last.ev.Count++
		last.ev.LastTime = now
		last.seq = r.seq
		ev = last.ev
	} else {
		ev = v1.Event{Time: now, LastTime: now, Count: 1, Node: node, Type: typ, Reason: reason, Message: message}
		ring = append(ring, entry{ev: ev, seq: r.seq})
		if len(ring) > r.size {
			// Drop the oldest. The array is not shrunk, but append
			// copies only the live part when it grows: at most about
			// twice the ring is held.
			ring = ring[len(ring)-r.size:]
		}
		r.rings[node] = ring
	}
	for f := range r.subs {
		f.offer(ev, r)
	}
	r.mu.Unlock()
	if r.count != nil {
		r.count(node, typ, reason)
	}
}

// Eventf is Event with a formatted message.
func (r *Recorder) Eventf(node, typ, reason, format string, args ...any) {
	if r == nil {
		return
	}
	r.Event(node, typ, reason, fmt.Sprintf(format, args...))
}

// Filter selects events: of the nodes named (none: every node and
// fliswarm's own), last seen at or after Since (zero: all).
type Filter struct {
	Nodes []string
	Since time.Time
}

func (f Filter) match(ev v1.Event) bool {
	if len(f.Nodes) > 0 && !slices.Contains(f.Nodes, ev.Node) {
		return false
	}
	return f.Since.IsZero() || !ev.LastTime.Before(f.Since)
}

// List returns the events f selects, in the order they were last
// recorded (oldest first).
func (r *Recorder) List(f Filter) []v1.Event {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listLocked(f)
}

func (r *Recorder) listLocked(f Filter) []v1.Event {
	var es []entry
	for _, ring := range r.rings {
		for _, e := range ring {
			if f.match(e.ev) {
				es = append(es, e)
			}
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]v1.Event, len(es))
	for i, e := range es {
		out[i] = e.ev
	}
	return out
}

// Recent returns node's last n events, newest first.
func (r *Recorder) Recent(node string, n int) []v1.Event {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.rings[node]
	out := make([]v1.Event, 0, min(n, len(ring)))
	for i := len(ring) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, ring[i].ev)
	}
	return out
}

// Follow returns the events f selects so far and a follower that
// receives every later one (a repeat counted on an earlier event comes
// again, with its new count), with nothing lost or seen twice between
// the two. Close the follower when done.
func (r *Recorder) Follow(f Filter) ([]v1.Event, *Follower) {
	fl := &Follower{filter: Filter{Nodes: f.Nodes}, ch: make(chan v1.Event, followBuffer)}
	if r == nil {
		close(fl.ch)
		return nil, fl
	}
	fl.r = r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs[fl] = struct{}{}
	return r.listLocked(f), fl
}

// Follower receives the events recorded after Follow.
type Follower struct {
	r      *Recorder
	filter Filter
	ch     chan v1.Event
	closed bool // r.mu held
	lost   bool // r.mu held
}

// C delivers the events; it is closed when the follower is closed or
// fell too far behind (Lost).
func (f *Follower) C() <-chan v1.Event { return f.ch }

// Lost reports that the follower was cut off for not reading: events
// after the last one received were not delivered.
func (f *Follower) Lost() bool {
	if f.r == nil {
		return false
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	return f.lost
}

// Close stops the deliveries and closes C.
func (f *Follower) Close() {
	if f.r == nil {
		return
	}
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.closeLocked()
}

func (f *Follower) closeLocked() {
	if f.closed {
		return
	}
	f.closed = true
	delete(f.r.subs, f)
	close(f.ch)
}

// offer delivers ev without blocking; r.mu held.
func (f *Follower) offer(ev v1.Event, r *Recorder) {
	if !f.filter.match(ev) {
		return
	}
	select {
	case f.ch <- ev:
	default:
		f.lost = true
		f.closeLocked()
	}
}
