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
	"github.com/sdss/fliswarm/controllers"
)

// Status is the daemon's answer to GET /v1/status.
type Status struct {
	Daemon DaemonInfo      `json:"daemon"`
	Nodes  []v1.NodeStatus `json:"nodes"`
}

// DaemonInfo describes the running daemon.
type DaemonInfo struct {
	Running   bool      `json:"running"`
	Pid       int       `json:"pid,omitempty"`
	Version   string    `json:"version,omitempty"`
	Config    string    `json:"config,omitempty"`
	Revision  string    `json:"revision,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	// ConfigError is set when the configuration file was edited into
	// something invalid; the daemon keeps the last good revision.
	ConfigError string `json:"configError,omitempty"`
	ActorAddr   string `json:"actorAddr,omitempty"`
}

// ReconcileRequest is the body of POST /v1/reconcile.
type ReconcileRequest struct {
	// Nodes to converge; empty means every enabled node.
	Nodes   []string      `json:"nodes,omitempty"`
	Force   bool          `json:"force,omitempty"`
	Timeout time.Duration `json:"timeout"`
}

// Backend is what the daemon offers the API.
type Backend interface {
	Status() Status
	Reconcile(ctx context.Context, req ReconcileRequest) []controllers.NodeResult
}

// Serve serves the API on a unix socket at path until ctx ends.
func Serve(ctx context.Context, path string, b Backend) error {
	_ = os.Remove(path) // a stale socket of a dead daemon; the pid lock guards a live one
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	_ = os.Chmod(path, 0o660)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, b.Status())
	})
	mux.HandleFunc("POST /v1/reconcile", func(w http.ResponseWriter, r *http.Request) {
		var req ReconcileRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if req.Timeout <= 0 {
			req.Timeout = 2 * time.Minute
		}
		ctx, cancel := context.WithTimeout(r.Context(), req.Timeout)
		defer cancel()
		writeJSON(w, b.Reconcile(ctx, req))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(l)
	_ = os.Remove(path)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
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
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
	return s, err
}

// Reconcile asks the daemon to converge nodes and waits for the result.
func (c *Client) Reconcile(ctx context.Context, req ReconcileRequest) ([]controllers.NodeResult, error) {
	var out []controllers.NodeResult
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
