package control

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// fakeBackend answers /v1/logs: gfa1 streams its lines and then waits
// for more, gfa9 is unknown.
type fakeBackend struct {
	got    chan LogsRequest
	lines  chan string
	events *events.Recorder
}

func (b *fakeBackend) Events(req v1.EventsRequest) ([]v1.Event, *events.Follower, error) {
	for _, n := range req.Nodes {
		if n != "gfa1" {
			return nil, nil, errors.New(n + " is not configured")
		}
	}
	f := events.Filter{Nodes: req.Nodes, Since: req.Since}
	if !req.Follow {
		return b.events.List(f), nil, nil
	}
	past, fl := b.events.Follow(f)
	return past, fl, nil
}

func (b *fakeBackend) Status() v1.DaemonStatus { return v1.DaemonStatus{} }
func (b *fakeBackend) Reconcile(context.Context, v1.ReconcileRequest) ([]v1.NodeResult, error) {
	return nil, nil
}

func (b *fakeBackend) OpenLogs(_ context.Context, req LogsRequest) ([]LogRecord, func(context.Context, func(LogRecord) error) error, error) {
	b.got <- req
	if req.Nodes[0] == "gfa9" {
		return nil, nil, &StatusError{Code: http.StatusNotFound, Err: errors.New("gfa9 is not configured")}
	}
	run := func(ctx context.Context, send func(LogRecord) error) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case l, ok := <-b.lines:
				if !ok {
					return send(LogRecord{Node: "gfa1", Error: "stream ended"})
				}
				if err := send(LogRecord{Node: "gfa1", Stream: "stdout", Text: l}); err != nil {
					return err
				}
			}
		}
	}
	return []LogRecord{{Node: "gfa1", Instance: "flicamera-gfa1"}}, run, nil
}

func serve(t *testing.T, b Backend) *Client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := Listen(path, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return NewClient(path)
}

func TestLogsStreamsEachLineAsItComes(t *testing.T) {
	b := &fakeBackend{got: make(chan LogsRequest, 1), lines: make(chan string)}
	c := serve(t, b)
	since := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
	recs := make(chan LogRecord)
	errc := make(chan error, 1)
	go func() {
		errc <- c.Logs(context.Background(), LogsRequest{Nodes: []string{"gfa1"}, Tail: 5, Since: since, Follow: true, Previous: true},
			func(r LogRecord) error { recs <- r; return nil })
	}()
	if req := <-b.got; !reflect.DeepEqual(req, LogsRequest{Nodes: []string{"gfa1"}, Tail: 5, Since: since, Follow: true, Previous: true}) {
		t.Errorf("the daemon got %+v", req)
	}
	next := func() LogRecord {
		select {
		case r := <-recs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no record within 10 s")
			return LogRecord{}
		}
	}
	if r := next(); r.Instance != "flicamera-gfa1" {
		t.Errorf("first record %+v, want the instance", r)
	}
	// Each line reaches the client while the stream stays open.
	for _, l := range []string{"one", "two"} {
		b.lines <- l
		if r := next(); r.Text != l {
			t.Errorf("record %+v, want %q", r, l)
		}
	}
	close(b.lines)
	if r := next(); r.Error != "stream ended" {
		t.Errorf("last record %+v", r)
	}
	if err := <-errc; err != nil {
		t.Errorf("Logs = %v", err)
	}
}

func TestLogsErrorBeforeStreaming(t *testing.T) {
	b := &fakeBackend{got: make(chan LogsRequest, 1)}
	c := serve(t, b)
	err := c.Logs(context.Background(), LogsRequest{Nodes: []string{"gfa9"}, Tail: -1}, func(LogRecord) error {
		t.Error("a record after an error")
		return nil
	})
	if err == nil || err.Error() != "gfa9 is not configured" {
		t.Errorf("Logs = %v, want the daemon's message", err)
	}
	// No node at all is the request's fault.
	resp, err := c.http.Get("http://fliswarm/v1/logs?tail=3")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no node: %s", resp.Status)
	}
	for _, q := range []string{"node=gfa1&tail=x", "node=gfa1&since=yesterday"} {
		resp, err := c.http.Get("http://fliswarm/v1/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s", q, resp.Status)
		}
	}
}

func TestLogsStreamEndsWhenTheDaemonStops(t *testing.T) {
	b := &fakeBackend{got: make(chan LogsRequest, 1), lines: make(chan string)}
	path := filepath.Join(t.TempDir(), "s.sock")
	s, err := Listen(path, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	opened := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- NewClient(path).Logs(context.Background(), LogsRequest{Nodes: []string{"gfa1"}, Follow: true},
			func(LogRecord) error { close(opened); return nil })
	}()
	<-opened
	start := time.Now()
	cancel()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return with a log stream open")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Serve took %s to stop with a log stream open", d)
	}
	select {
	case <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("the client's stream did not end when the daemon stopped")
	}
}
