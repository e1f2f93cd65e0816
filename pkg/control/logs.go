package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LogsRequest asks for the output of some nodes' cameras
// (GET /v1/logs?node=gfa1&node=gfa2&tail=20&since=RFC3339&follow=1&previous=1).
type LogsRequest struct {
	Nodes []string
	// Tail is how many of each camera's last lines to start with;
	// negative: all.
	Tail int
	// Since drops older lines; zero: none dropped.
	Since time.Time
	// Follow streams new lines until the client goes.
	Follow bool
	// Previous shows each camera's previous instance.
	Previous bool
}

// LogRecord is one line of the /v1/logs answer (newline-delimited JSON).
// A node's stream starts with a record that has only Instance set and
// ends, when it failed, with one that has only Error.
type LogRecord struct {
	Node     string    `json:"node"`
	Time     time.Time `json:"time,omitzero"`
	Stream   string    `json:"stream,omitempty"`
	Text     string    `json:"text,omitempty"`
	Instance string    `json:"instance,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// LogsBackend is what the daemon offers /v1/logs.
type LogsBackend interface {
	// OpenLogs checks req and finds what each node shows; an error means
	// nothing streams (a node not configured or not enabled, an engine
	// that does not answer, no container or previous instance), and
	// LogsErrorStatus gives its HTTP status. The returned headers (one per
	// node: which container run it shows) are sent first; run then sends
	// the lines until they end or ctx ends.
	OpenLogs(ctx context.Context, req LogsRequest) (headers []LogRecord, run func(ctx context.Context, send func(LogRecord) error) error, err error)
}

// StatusError gives an error the HTTP status /v1/logs answers it with.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// parseLogsRequest reads the query of GET /v1/logs.
func parseLogsRequest(q url.Values) (LogsRequest, error) {
	req := LogsRequest{Nodes: q["node"], Tail: -1}
	if len(req.Nodes) == 0 {
		return req, errors.New("no node given")
	}
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return req, fmt.Errorf("tail %q is not a number", s)
		}
		req.Tail = n
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return req, fmt.Errorf("since %q is not an RFC 3339 time", s)
		}
		req.Since = t
	}
	req.Follow = q.Get("follow") == "1"
	req.Previous = q.Get("previous") == "1"
	return req, nil
}

// serveLogs answers GET /v1/logs: an error before anything streams is a
// non-200 answer with the message; then one JSON record per line, each
// flushed at once.
func serveLogs(b LogsBackend) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := parseLogsRequest(r.URL.Query())
		if err != nil {
			http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
			return
		}
		headers, run, err := b.OpenLogs(r.Context(), req)
		line := jsonLines(w)
		if err != nil {
			code := http.StatusUnprocessableEntity
			if se, ok := errors.AsType[*StatusError](err); ok {
				code = se.Code
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.WriteHeader(http.StatusOK)
		send := func(rec LogRecord) error { return line(rec) }
		for _, h := range headers {
			if send(h) != nil {
				return
			}
		}
		_ = run(r.Context(), send)
	}
}

// Logs asks the daemon for camera output and calls fn with each record as
// it comes, until the answer ends (nil), ctx ends (nil) or fn fails. The
// daemon must start answering within ReplyGrace; an error it answers
// with, before any line, is returned with its message.
func (c *Client) Logs(ctx context.Context, req LogsRequest, fn func(LogRecord) error) error {
	q := url.Values{"node": req.Nodes}
	q.Set("tail", strconv.Itoa(req.Tail))
	if !req.Since.IsZero() {
		q.Set("since", req.Since.UTC().Format(time.RFC3339Nano))
	}
	if req.Follow {
		q.Set("follow", "1")
	}
	if req.Previous {
		q.Set("previous", "1")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		answered bool
		late     bool
	)
	timer := time.AfterFunc(ReplyGrace, func() {
		mu.Lock()
		defer mu.Unlock()
		if !answered {
			late = true
			cancel()
		}
	})
	defer timer.Stop()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fliswarm/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(hreq)
	mu.Lock()
	answered = true
	mu.Unlock()
	if err != nil {
		if late {
			return fmt.Errorf("control socket: no answer within %s", ReplyGrace)
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return errors.New(strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec LogRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return fmt.Errorf("control socket: bad log record: %w", err)
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("control socket: %w", err)
	}
	return nil
}
