package controllers

import (
	"sync"
)

// Feeds is what the event source knows of each node's event stream, for
// the reconciler (what it may keep from an earlier read) and the resync
// (how often a node needs one).
//
// A node's feed is up while its stream is open and its engine answered
// once the stream opened: every change to the node's containers, volumes
// or images is then announced. Each event about one of them, and the
// stream opening or ending, moves that kind's generation: a read made
// under a generation still current tells what the node has.
type Feeds struct {
	mu    sync.Mutex
	nodes map[string]*feed
}

type feed struct {
	up bool
	// silent: the node's address went quiet (its camera connection was
	// lost) since its last full look.
	silent bool
	// gen counts, for each kind, the events (and stream changes) seen.
	gen feedGen
}

// feedGen is a node's generations at one moment.
type feedGen struct {
	containers, volumes, images uint64
}

// The kinds of what a node's events are about.
const (
	kindContainer = "container"
	kindVolume    = "volume"
	kindImage     = "image"
)

// NewFeeds returns feeds with every node's down.
func NewFeeds() *Feeds { return &Feeds{nodes: map[string]*feed{}} }

func (f *Feeds) node(n string) *feed {
	fd, ok := f.nodes[n]
	if !ok {
		fd = &feed{}
		f.nodes[n] = fd
	}
	return fd
}

// SetUp records node's stream opening (up) or ending; either way what was
// read before may have changed unannounced.
func (f *Feeds) SetUp(node string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.node(node)
	fd.up = up
	fd.gen.containers++
	fd.gen.volumes++
	fd.gen.images++
}

// Touch records an event about kind on node.
func (f *Feeds) Touch(node, kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.node(node)
	switch kind {
	case kindContainer:
		fd.gen.containers++
	case kindVolume:
		fd.gen.volumes++
	case kindImage:
		fd.gen.images++
	}
}

// Silent records that node's address went quiet: its next pass pings it,
// whatever its stream says (a cut cable leaves a stream open, without a
// word, until keepalives notice).
func (f *Feeds) Silent(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.node(node).silent = true
}

// isSilent reports Silent, not cleared by a pass yet.
func (f *Feeds) isSilent(node string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node(node).silent
}

// takeSilent reports (and clears) Silent.
func (f *Feeds) takeSilent(node string) bool {
	if f == nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.node(node)
	s := fd.silent
	fd.silent = false
	return s
}

// State is whether node's feed is up, and its generations now.
func (f *Feeds) State(node string) (up bool, gen feedGen) {
	if f == nil {
		return false, feedGen{}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fd := f.node(node)
	return fd.up, fd.gen
}

// Up reports whether node's feed is up.
func (f *Feeds) Up(node string) bool {
	up, _ := f.State(node)
	return up
}
