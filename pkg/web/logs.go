package web

import (
	"context"
	"slices"
	"sync"
	"time"
)

// LogSource follows a node's camera output for the page; the daemon's
// manager implements it with the controller's engine connections.
type LogSource interface {
	// FollowLogs calls fn with the camera's last tail lines, then with
	// each new one, until ctx ends or the camera stops (its error says
	// why nothing could be read).
	FollowLogs(ctx context.Context, node string, tail int, fn func(t time.Time, line string)) error
}

// LogLine is one line of a camera's output on the page.
type LogLine struct {
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

const (
	// LogLinesPerNode is how many of a camera's last lines its card shows.
	LogLinesPerNode = 5
	// logRetry is the pause before following a node's camera again after
	// its stream ended (the camera stopped, the engine did not answer).
	logRetry = 3 * time.Second
)

// logWatch keeps the last lines of each enabled node's camera while at
// least one page is open: one follower per node then, none otherwise.
type logWatch struct {
	src     LogSource
	changed chan struct{} // a line arrived (capacity 1)

	mu       sync.Mutex
	base     context.Context // the server's; nil before start
	watchers int
	nodes    []string
	follow   map[string]context.CancelFunc
	lines    map[string][]LogLine
}

func newLogWatch(src LogSource) *logWatch {
	return &logWatch{src: src, changed: make(chan struct{}, 1),
		follow: map[string]context.CancelFunc{}, lines: map[string][]LogLine{}}
}

// start lets followers run under ctx; they all stop when it ends.
func (w *logWatch) start(ctx context.Context) {
	w.mu.Lock()
	w.base = ctx
	w.syncLocked()
	w.mu.Unlock()
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.base = nil
		w.syncLocked()
	})
}

// setNodes says which nodes are enabled now.
func (w *logWatch) setNodes(nodes []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if slices.Equal(nodes, w.nodes) {
		return
	}
	w.nodes = slices.Clone(nodes)
	w.syncLocked()
}

// watch counts an open page until the returned func is called.
func (w *logWatch) watch() (stop func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watchers++
	w.syncLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.watchers--
			w.syncLocked()
		})
	}
}

// syncLocked starts a follower for each enabled node while someone
// watches, and stops the others.
func (w *logWatch) syncLocked() {
	on := w.src != nil && w.base != nil && w.watchers > 0
	for n, cancel := range w.follow {
		if !on || !slices.Contains(w.nodes, n) {
			cancel()
			delete(w.follow, n)
		}
	}
	for n := range w.lines {
		if !slices.Contains(w.nodes, n) {
			delete(w.lines, n)
		}
	}
	if !on {
		return
	}
	for _, n := range w.nodes {
		if _, ok := w.follow[n]; !ok {
			ctx, cancel := context.WithCancel(w.base)
			w.follow[n] = cancel
			go w.run(ctx, n)
		}
	}
}

// run follows node's camera until ctx ends, again after each end of its
// stream; each stream starts with the camera's last lines, which replace
// those kept.
func (w *logWatch) run(ctx context.Context, node string) {
	for {
		fresh := true
		_ = w.src.FollowLogs(ctx, node, LogLinesPerNode, func(t time.Time, line string) {
			w.mu.Lock()
			if ctx.Err() != nil {
				w.mu.Unlock()
				return
			}
			ring := w.lines[node]
			if fresh {
				ring, fresh = nil, false
			}
			ring = append(ring, LogLine{Time: t, Text: line})
			if len(ring) > LogLinesPerNode {
				ring = slices.Clone(ring[len(ring)-LogLinesPerNode:])
			}
			w.lines[node] = ring
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		})
		t := time.NewTimer(logRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// snapshot returns each node's last lines, oldest first.
func (w *logWatch) snapshot() map[string][]LogLine {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string][]LogLine, len(w.lines))
	for n, l := range w.lines {
		out[n] = slices.Clone(l)
	}
	return out
}

// following returns the nodes followed now.
func (w *logWatch) following() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for n := range w.follow {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
