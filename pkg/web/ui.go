package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// ui holds the status page: plain HTML, CSS and JavaScript, no build step.
// index.html is a template: the cards are rendered on the server too, so
// that the first paint (and curl) already shows every node; app.js then
// keeps them up to date.
//
//go:embed ui
var ui embed.FS

var pageTemplate = template.Must(template.ParseFS(ui, "ui/index.html"))

// staticFS serves the page's stylesheet and script at /static/.
func staticFS() fs.FS {
	sub, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err)
	}
	return sub
}

// card is what the server renders of a node's card; app.js fills the rest.
type card struct {
	Name, Phase, Message     string
	State, StateWord, Health string
	Ready                    bool
}

// Classify gives a node's card its health (ok, warn, bad, off: green,
// amber, red, grey) and the state word of its badge. app.js classifies
// the same way.
func Classify(phase string) (health, state string) {
	switch phase {
	case v1.PhaseReady:
		return "ok", "running"
	case v1.PhaseDisabled:
		return "off", "disabled"
	case v1.PhaseUnreachable, v1.PhaseEngineDown, v1.PhaseImagePullFailed:
		return "bad", "down"
	case v1.PhaseCrashLoopBackOff:
		return "bad", "crash loop"
	case v1.PhaseRolloutHalted:
		return "bad", "halted"
	case v1.PhaseNotObserved, v1.PhaseUpdatePending:
		return "warn", "pending"
	case v1.PhaseStarting:
		return "warn", "starting"
	}
	return "warn", "recovering"
}

func newCard(n v1.NodeStatus) card {
	health, state := Classify(n.Phase)
	return card{Name: n.Name, Phase: n.Phase, Message: n.Message, Health: health,
		StateWord: state, State: strings.ReplaceAll(state, " ", "-"), Ready: n.Ready()}
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	st := s.opts.Status()
	data := struct {
		Summary  string
		Cards    []card
		Template card
	}{Template: card{Health: "off"}}
	ready, enabled := 0, 0
	for _, n := range st.Nodes {
		data.Cards = append(data.Cards, newCard(n))
		if n.Enabled {
			enabled++
			if n.Ready() {
				ready++
			}
		}
	}
	data.Summary = fmt.Sprintf("%d of %d ready", ready, enabled)
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = buf.WriteTo(w)
}
