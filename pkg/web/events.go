package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// eventsPerCard is how many of a node's events its card shows.
const eventsPerCard = 8

// nodeEvents serves the recorded events as JSON, oldest first:
// ?node=gfa1 (repeated for several; none: every node and fliswarm's own)
// and ?since= a time (RFC 3339) or a duration back from now (1h, 90s).
func (s *Server) nodeEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := events.Filter{Nodes: q["node"]}
	if v := strings.TrimSpace(q.Get("since")); v != "" {
		since, err := events.ParseSince(v, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.Since = since
	}
	evs := s.opts.Events.List(f)
	if evs == nil {
		evs = []v1.Event{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(evs)
}

// recentEvents is every node's last events for the cards, newest first.
func (s *Server) recentEvents(nodes []v1.NodeStatus) map[string][]v1.Event {
	out := make(map[string][]v1.Event, len(nodes))
	for _, n := range nodes {
		out[n.Name] = s.opts.Events.Recent(n.Name, eventsPerCard)
	}
	return out
}
