package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Snapshot is what the page receives on each update: the daemon's status
// and every node's recent events (newest first).
type Snapshot struct {
	Daemon v1.DaemonInfo         `json:"daemon"`
	Nodes  []v1.NodeStatus       `json:"nodes"`
	Events map[string][]v1.Event `json:"events"`
	// Logs are each enabled node's last camera lines (oldest first),
	// followed while a page is open (logs.go).
	Logs map[string][]LogLine `json:"logs"`
	// Now is the server's time, so that the page computes uptimes with
	// the server's clock.
	Now time.Time `json:"now"`
	// Seq counts the snapshots pushed.
	Seq uint64 `json:"seq"`
}

// hub follows the status store and pushes snapshots, with each node's
// recent events, to the page's streams.
type hub struct {
	status func() v1.DaemonStatus
	recent func([]v1.NodeStatus) map[string][]v1.Event

	mu      sync.Mutex
	current v1.DaemonStatus   // the status last observed
	phases  map[string]string // each node's phase in the last push
	latest  []byte            // the last snapshot pushed, as JSON
	seq     uint64
	clients map[chan []byte]struct{}
	logs    *logWatch
}

func newHub(status func() v1.DaemonStatus, recent func([]v1.NodeStatus) map[string][]v1.Event, logs LogSource) *hub {
	return &hub{status: status, recent: recent, clients: map[chan []byte]struct{}{}, logs: newLogWatch(logs)}
}

// run observes the status on every notification. It pushes at once when
// a node's phase changed since the last push (so that a camera back
// within 100 ms is still seen going down), otherwise at most once per
// minInterval.
func (h *hub) run(ctx context.Context, subscribe func() (<-chan string, func()), minInterval time.Duration) {
	var notes <-chan string
	if subscribe != nil {
		ch, cancel := subscribe()
		defer cancel()
		notes = ch
	}
	h.observe()
	h.logs.start(ctx)
	h.push()
	last := time.Now()
	var timer *time.Timer
	var fire <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		changed, due := false, false
		select {
		case <-ctx.Done():
			return
		case <-notes:
			changed = h.observe()
		case <-h.logs.changed: // a camera line: a change of no phase
		case <-fire:
			fire, due = nil, true
		}
		if !due {
			if !changed && time.Since(last) < minInterval {
				if fire == nil {
					timer = time.NewTimer(minInterval - time.Since(last))
					fire = timer.C
				}
				continue
			}
			if timer != nil {
				timer.Stop()
				fire = nil
			}
		}
		h.push()
		last = time.Now()
	}
}

// observe reads the status and reports whether a node's phase differs
// from the last push.
func (h *hub) observe() bool {
	st := h.status()
	var enabled []string
	for _, n := range st.Nodes {
		if n.Enabled {
			enabled = append(enabled, n.Name)
		}
	}
	h.logs.setNodes(enabled)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.current = st
	if len(st.Nodes) != len(h.phases) {
		return true
	}
	for _, n := range st.Nodes {
		if p, ok := h.phases[n.Name]; !ok || p != n.Phase {
			return true
		}
	}
	return false
}

// push sends the status last observed to every stream.
func (h *hub) push() {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := h.snapshotLocked()
	for ch := range h.clients {
		select {
		case ch <- msg:
		default: // a slow reader gets the newest snapshot, not every one
			select {
			case <-ch:
			default:
			}
			ch <- msg
		}
	}
}

func (h *hub) snapshotLocked() []byte {
	h.seq++
	h.phases = make(map[string]string, len(h.current.Nodes))
	for _, n := range h.current.Nodes {
		h.phases[n.Name] = n.Phase
	}
	nodes := h.current.Nodes
	if nodes == nil {
		nodes = []v1.NodeStatus{}
	}
	b, err := json.Marshal(Snapshot{
		Daemon: h.current.Daemon, Nodes: nodes, Events: h.recent(nodes), Logs: h.logs.snapshot(), Now: time.Now(), Seq: h.seq,
	})
	if err != nil {
		b = []byte(fmt.Sprintf(`{"error":%q}`, err.Error()))
	}
	h.latest = b
	return b
}

// subscribe registers a stream: it gets the latest snapshot first, then
// every push.
func (h *hub) subscribe() (<-chan []byte, []byte, func()) {
	ch := make(chan []byte, 1)
	var st *v1.DaemonStatus
	if h.latestSnapshot() == nil { // Run has not pushed yet: a snapshot of now
		s := h.status()
		st = &s
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.latest
	if first == nil {
		h.current = *st
		first = h.snapshotLocked()
	}
	h.clients[ch] = struct{}{}
	unwatch := h.logs.watch()
	return ch, first, func() {
		h.mu.Lock()
		delete(h.clients, ch)
		h.mu.Unlock()
		unwatch()
	}
}

func (h *hub) latestSnapshot() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.latest
}

// stream sends snapshots as server-sent events ("status" events whose
// data is a Snapshot), until the client goes or the server stops.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	ch, first, cancel := s.hub.subscribe()
	defer cancel()
	if _, err := fmt.Fprintf(w, "retry: 2000\n\n"); err != nil {
		return
	}
	send := func(msg []byte) bool {
		_, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", msg)
		fl.Flush()
		return err == nil
	}
	if !send(first) {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg := <-ch:
			if !send(msg) {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
