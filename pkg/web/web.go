// Package web serves the daemon's HTTP endpoints: health and readiness
// checks, the status as JSON, Prometheus metrics, and a live status page.
//
//	/healthz  200 while the daemon runs
//	/readyz   200 once the configuration is loaded and every enabled node
//	          has been observed once; 503 with the reason before
//	/status   the JSON of `fliswarm status --json` (v1.DaemonStatus)
//	/metrics  Prometheus text format
//	/events   the events recorded (fliswarm events) as JSON; ?node=, ?since=
//	/         the status page: one card per node, updated live
//	/stream   server-sent events feeding the page
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no
// build step). It never polls: the server pushes a snapshot of every
// node's status, with each node's recent events, when the status store
// changes (at most about 5 a second, but a change of a node's phase is
// pushed at once, so that no state is skipped). While a page is open,
// each enabled node's camera output is followed and its last lines are
// pushed with the snapshots (logs.go); nothing follows it otherwise.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// Defaults of Options.
const (
	DefaultMinInterval = 200 * time.Millisecond
	// heartbeat keeps idle event streams open through proxies.
	heartbeat = 15 * time.Second
)

// Options configure a Server.
type Options struct {
	// Status is the daemon's status, as the control socket returns it.
	Status func() v1.DaemonStatus
	// Subscribe tells of status changes (controllers.Store.Subscribe):
	// each notification carries a node name, "" for every node.
	Subscribe func() (<-chan string, func())
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	Logger  logr.Logger
	// MinInterval is the shortest time between two pushes to the page
	// when no node's phase changed. Default DefaultMinInterval.
	MinInterval time.Duration
	// Pprof serves Go's profiles under /debug/pprof/ (off by default; the
	// daemon turns it on when FLISWARM_PPROF=1, for profiling benchmarks).
	Pprof bool
	// Events are the events recorded, served at /events and on each
	// node's card; nil: none.
	Events *events.Recorder
	// Logs follows the cameras' output for the cards (their last
	// LogLinesPerNode lines, live while a page is open); nil: none.
	Logs LogSource
	// Addr is the address Bind listens on (host:port; port 0 picks a
	// free one).
	Addr string
}

// Server serves the endpoints. Run (or Serve) must run for the page's
// live updates and the events.
type Server struct {
	opts Options
	log  logr.Logger
	hub  *hub
	mux  *http.ServeMux
	l    atomic.Pointer[net.Listener] // set by Bind
}

// New returns a server; nothing runs until Run or Serve.
func New(opts Options) *Server {
	if opts.MinInterval <= 0 {
		opts.MinInterval = DefaultMinInterval
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	s := &Server{opts: opts, log: opts.Logger}
	s.hub = newHub(opts.Status, s.recentEvents, opts.Logs)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /status", s.status)
	s.mux.HandleFunc("GET /stream", s.stream)
	s.mux.HandleFunc("GET /events", s.nodeEvents)
	if opts.Metrics != nil {
		s.mux.Handle("GET /metrics", opts.Metrics)
	}
	if opts.Pprof {
		s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	s.mux.HandleFunc("GET /{$}", s.page)
	return s
}

// Handler serves every endpoint.
func (s *Server) Handler() http.Handler { return s.mux }

// Run follows the status store until ctx ends: it records each node's
// events and pushes the page's updates.
func (s *Server) Run(ctx context.Context) {
	s.hub.run(ctx, s.opts.Subscribe, s.opts.MinInterval)
}

// Bind listens on Options.Addr, so that a port in use fails the daemon's
// start at once; Start then serves on it.
func (s *Server) Bind() error {
	if s.l.Load() != nil {
		return nil
	}
	l, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("status page and metrics (http: %s): %w", s.opts.Addr, err)
	}
	s.l.Store(&l)
	return nil
}

// Addr is the address the server listens on, nil before Bind.
func (s *Server) Addr() net.Addr {
	if l := s.l.Load(); l != nil {
		return (*l).Addr()
	}
	return nil
}

// Start serves on the address Bind bound (binding it first if Bind was not
// called) until ctx ends, as Serve.
func (s *Server) Start(ctx context.Context) error {
	if err := s.Bind(); err != nil {
		return err
	}
	return s.Serve(ctx, *s.l.Load())
}

// Serve runs Run and an HTTP server on l until ctx ends, then shuts the
// server down (open event streams end with ctx) and returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err == nil {
		err = <-errc
	}
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	text(w, http.StatusOK, "ok")
}

// Ready reports whether the daemon is ready: its configuration is loaded
// and every enabled node has been observed once; otherwise why not.
func Ready(st v1.DaemonStatus) (bool, string) {
	if st.Daemon.Revision == "" {
		return false, "the configuration is not loaded yet"
	}
	var waiting []string
	for _, n := range st.Nodes {
		if n.Enabled && n.ObservedAt.IsZero() {
			waiting = append(waiting, n.Name)
		}
	}
	if len(waiting) > 0 {
		return false, "not observed yet: " + strings.Join(waiting, ", ")
	}
	return true, "ok"
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := Ready(s.opts.Status())
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	text(w, code, why)
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(s.opts.Status())
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
