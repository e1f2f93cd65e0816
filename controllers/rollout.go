package controllers

import (
	"slices"
	"sync"
)

// Rollout coordinates changes that take running cameras down: at most
// maxUnavailable nodes hold a slot at once, a node keeps its slot from the
// moment its old camera is stopped until its new camera answers, and a
// node whose new camera fails keeps its slot and halts the rollout, so a
// bad change takes down one camera, not all. A new revision lifts a halt.
// No slot for a revision is given while a node is still pulling its image:
// the new image is on every node whose pull has started before the first
// camera goes down.
type Rollout struct {
	mu      sync.Mutex
	max     int
	holders map[string]string // node → revision it is rolling out
	pulling map[string]string // node → revision whose image it pulls now
	waiting []string
	halt    *halt
	// wake enqueues a node that waits for a slot.
	wake func(node string)
	// nodes, when set, lists the nodes whose history must be read (see
	// Known) before any slot is given; known holds those read.
	nodes func() []string
	known map[string]bool
}

type halt struct {
	node, revision, reason string
}

// NewRollout returns a coordinator with max slots that calls wake for a
// waiting node when a slot frees.
func NewRollout(max int, wake func(node string)) *Rollout {
	return &Rollout{max: max, holders: map[string]string{}, pulling: map[string]string{}, wake: wake, known: map[string]bool{}}
}

// WaitForHistory has Acquire give no slot until every node that nodes
// lists has been observed once (Known): a halt recorded on one node is
// read back before a restarted fliswarm takes another node's camera down.
func (r *Rollout) WaitForHistory(nodes func() []string) {
	r.mu.Lock()
	r.nodes = nodes
	r.mu.Unlock()
}

// Known records that node's history has been read (or that the node
// could not be read at all). The first time, it wakes waiting nodes.
func (r *Rollout) Known(node string) {
	r.mu.Lock()
	first := !r.known[node]
	r.known[node] = true
	r.mu.Unlock()
	if first {
		r.wakeWaiting()
	}
}

// HistoryRead reports whether every node's history has been read (see
// WaitForHistory); when not, node is woken once it has.
func (r *Rollout) HistoryRead(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.historyReadLocked() {
		return true
	}
	if !slices.Contains(r.waiting, node) {
		r.waiting = append(r.waiting, node)
	}
	return false
}

func (r *Rollout) historyReadLocked() bool {
	if r.nodes == nil {
		return true
	}
	for _, n := range r.nodes() {
		if !r.known[n] {
			return false
		}
	}
	return true
}

// Resume has node hold a slot for revision whatever the number taken:
// its old camera is already down (a rollout interrupted by a restart).
func (r *Rollout) Resume(node, revision string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holders[node] = revision
}

// SetMax changes the number of slots. Nodes holding a slot keep it; with
// fewer slots, no new one is given until enough are released.
func (r *Rollout) SetMax(n int) {
	r.mu.Lock()
	grew := n > r.max
	r.max = n
	r.mu.Unlock()
	if grew {
		r.wakeWaiting()
	}
}

// SetRevision is told the revision in force. A halt of another revision
// is lifted: its node's slot is released and the rollout resumes with the
// new revision.
func (r *Rollout) SetRevision(revision string) {
	r.mu.Lock()
	lifted := r.halt != nil && r.halt.revision != revision
	if lifted {
		delete(r.holders, r.halt.node)
		r.halt = nil
	}
	r.mu.Unlock()
	if lifted {
		r.wakeWaiting()
	}
}

// Acquire gives node a slot to roll out revision, and reports whether it
// has one. A node that already holds one keeps it. No slot is given while
// the rollout of that revision is halted, nor when every slot is taken
// (the node is woken when one frees).
func (r *Rollout) Acquire(node, revision string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.holders[node]; ok {
		r.holders[node] = revision
		return true
	}
	if r.halt != nil && r.halt.revision == revision {
		return false
	}
	pulling := false
	for n, rev := range r.pulling {
		pulling = pulling || n != node && rev == revision
	}
	if pulling || !r.historyReadLocked() || len(r.holders) >= r.max {
		if !slices.Contains(r.waiting, node) {
			r.waiting = append(r.waiting, node)
		}
		return false
	}
	r.waiting = slices.DeleteFunc(r.waiting, func(n string) bool { return n == node })
	r.holders[node] = revision
	return true
}

// Pulling records that node pulls the image of revision before it asks
// for a slot; Pulled that the pull ended (either way), which wakes the
// nodes waiting for it.
func (r *Rollout) Pulling(node, revision string) {
	r.mu.Lock()
	r.pulling[node] = revision
	r.mu.Unlock()
}

// Pulled: see Pulling.
func (r *Rollout) Pulled(node string) {
	r.mu.Lock()
	delete(r.pulling, node)
	r.mu.Unlock()
	r.wakeWaiting()
}

// Holds reports whether node holds a slot.
func (r *Rollout) Holds(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.holders[node]
	return ok
}

// Release gives node's slot back (its new camera answers) and wakes the
// nodes waiting for one. The node that halted the rollout keeps its slot
// until SetRevision lifts the halt.
func (r *Rollout) Release(node string) {
	r.mu.Lock()
	_, held := r.holders[node]
	if r.halt != nil && r.halt.node == node {
		held = false // a halted node keeps its slot until a new revision
	} else {
		delete(r.holders, node)
	}
	r.mu.Unlock()
	if held {
		r.wakeWaiting()
	}
}

// Halt stops the rollout of revision at node, whose new camera failed
// for reason. The node keeps its slot.
func (r *Rollout) Halt(node, revision, reason string) {
	r.mu.Lock()
	r.holders[node] = revision
	r.halt = &halt{node: node, revision: revision, reason: reason}
	r.mu.Unlock()
	r.wakeWaiting() // they hold, and say so
}

// Halted returns the node and reason of a halt of revision, if any.
func (r *Rollout) Halted(revision string) (node, reason string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halt == nil || r.halt.revision != revision {
		return "", "", false
	}
	return r.halt.node, r.halt.reason, true
}

func (r *Rollout) wakeWaiting() {
	r.mu.Lock()
	w := r.waiting
	r.waiting = nil
	r.mu.Unlock()
	for _, n := range w {
		r.wake(n)
	}
}
