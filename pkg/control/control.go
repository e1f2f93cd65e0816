package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// Backend is what the daemon offers the API.
type Backend interface {
	Status() v1.DaemonStatus
	// Reconcile converges the nodes of req; an error rejects the request
	// as a whole (a node that is not configured or not enabled).
	Reconcile(ctx context.Context, req v1.ReconcileRequest) ([]v1.NodeResult, error)
	// Events returns the events req selects and, when it follows, a
	// follower of the later ones; an error rejects the request (a node
	// that is not configured or not enabled).
	Events(req v1.EventsRequest) ([]v1.Event, *events.Follower, error)
	LogsBackend // GET /v1/logs (logs.go)
}

// Server is the control API on a unix socket.
type Server struct {
	path string
	l    net.Listener
	srv  *http.Server
}

// Listen binds the socket at path (replacing a stale one: the pid lock
// guards a live daemon). Nothing is served until Serve.
func Listen(path string, b Backend) (*Server, error) {
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(path, 0o660)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, b.Status())
	})
	mux.HandleFunc("POST /v1/reconcile", func(w http.ResponseWriter, r *http.Request) {
		var req v1.ReconcileRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Timeout <= 0 {
			req.Timeout = 2 * time.Minute
		}
		// The daemon's own deadline: the client waits a little longer, so
		// that it always receives each node's last state and error.
		ctx, cancel := context.WithTimeout(r.Context(), req.Timeout)
		defer cancel()
		res, err := b.Reconcile(ctx, req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		writeJSON(w, res)
	})
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) {
		serveEvents(w, r, b)
	})
	mux.HandleFunc("GET /v1/logs", serveLogs(b))
	return &Server{path: path, l: l, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Serve answers requests until ctx ends, then removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
	})
	defer stop()
	// Requests end with ctx: a followed log stream must not hold the
	// shutdown.
	s.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	err := s.srv.Serve(s.l)
	_ = os.Remove(s.path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// jsonLines sets w up for JSON lines (/v1/events, /v1/logs) and returns
// a writer of one line, flushed at once so that a follower sees it.
func jsonLines(w http.ResponseWriter) func(v any) error {
	w.Header().Set("Content-Type", "application/jsonl")
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	return func(v any) error {
		if err := enc.Encode(v); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Client talks to a daemon's control socket.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// Status asks the daemon for its status.
func (c *Client) Status(ctx context.Context) (v1.DaemonStatus, error) {
	var s v1.DaemonStatus
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// ReplyGrace is how much longer than the request's timeout a client waits
// for the daemon's answer.
const ReplyGrace = 15 * time.Second

// Reconcile asks the daemon to converge nodes and waits for the result.
func (c *Client) Reconcile(ctx context.Context, req v1.ReconcileRequest) ([]v1.NodeResult, error) {
	var out []v1.NodeResult
	err := c.do(ctx, http.MethodPost, "/v1/reconcile", req, &out)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://fliswarm"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("control socket: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
