package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"testing"
	"time"
)

// frame is one multiplexed chunk as a non-TTY container's log endpoint
// sends it: an 8-byte header (stream, 0, 0, 0, big-endian size), then the
// bytes.
func frame(stream byte, s string) []byte {
	h := make([]byte, 8, 8+len(s))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(s)))
	return append(h, s...)
}

func TestStreamLogsDemultiplexesAndParses(t *testing.T) {
	f := newFakeEngine(t)
	var query map[string]string
	f.handle("GET", "/containers/flicamera-gfa1/logs", func(w http.ResponseWriter, r *http.Request) {
		query = map[string]string{}
		for k := range r.URL.Query() {
			query[k] = r.URL.Query().Get(k)
		}
		w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
		// A line split over two frames, a stderr line in between, and a
		// last line without its newline.
		_, _ = w.Write(frame(1, "2026-12-03T06:00:00.000000001Z hello "))
		_, _ = w.Write(frame(2, "2026-12-03T06:00:01Z oops\n"))
		_, _ = w.Write(frame(1, "world\r\n2026-12-03T06:00:02Z \n"))
		_, _ = w.Write(frame(1, "2026-12-03T06:00:03Z last"))
	})
	c := f.client(t, Options{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC)
	var got []LogLine
	err := c.StreamLogs(context.Background(), "flicamera-gfa1", LogOptions{Tail: 3, Since: since}, func(l LogLine) error {
		got = append(got, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []LogLine{
		{time.Date(2026, 12, 3, 6, 0, 1, 0, time.UTC), "stderr", "oops"},
		{time.Date(2026, 12, 3, 6, 0, 0, 1, time.UTC), "stdout", "hello world"},
		{time.Date(2026, 12, 3, 6, 0, 2, 0, time.UTC), "stdout", ""},
		{time.Date(2026, 12, 3, 6, 0, 3, 0, time.UTC), "stdout", "last"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d lines %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) || got[i].Stream != want[i].Stream || got[i].Text != want[i].Text {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if query["tail"] != "3" || query["timestamps"] != "1" || query["stdout"] != "1" || query["stderr"] != "1" ||
		query["since"] == "" || query["follow"] != "" {
		t.Errorf("query = %v", query)
	}
}

func TestStreamLogsFollowEndsWithContext(t *testing.T) {
	f := newFakeEngine(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle("GET", "/containers/c1/logs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") != "1" || r.URL.Query().Has("tail") {
			t.Errorf("query = %v", r.URL.Query())
		}
		_, _ = w.Write(frame(1, "2026-12-03T06:00:00Z first\n"))
		w.(http.Flusher).Flush()
		select { // the engine keeps the stream open
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := f.client(t, Options{})
	_ = c.Ping(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lines := make(chan LogLine, 1)
	go func() {
		done <- c.StreamLogs(ctx, "c1", LogOptions{Tail: -1, Follow: true}, func(l LogLine) error {
			lines <- l
			return nil
		})
	}()
	select {
	case l := <-lines:
		if l.Text != "first" {
			t.Errorf("line %+v", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no line")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("StreamLogs after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StreamLogs did not end with its context")
	}
}

func TestStreamLogsCallbackErrorAndNotFound(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("GET", "/containers/c1/logs", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(frame(1, "2026-12-03T06:00:00Z a\n2026-12-03T06:00:00Z b\n"))
	})
	f.handle("GET", "/containers/gone/logs", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "No such container: gone")
	})
	c := f.client(t, Options{})
	_ = c.Ping(context.Background())
	stop := errors.New("enough")
	n := 0
	err := c.StreamLogs(context.Background(), "c1", LogOptions{Tail: -1}, func(LogLine) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("err %v after %d lines, want the callback's error after 1", err, n)
	}
	err = c.StreamLogs(context.Background(), "gone", LogOptions{Tail: -1}, func(LogLine) error { return nil })
	if !IsNotFound(err) {
		t.Errorf("missing container: %v, want IsNotFound", err)
	}
}

func TestStreamLogsConnectTimeout(t *testing.T) {
	f := newFakeEngine(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.handle("GET", "/containers/c1/logs", func(w http.ResponseWriter, r *http.Request) {
		select { // never answers
		case <-r.Context().Done():
		case <-release:
		}
	})
	c := f.client(t, Options{Timeout: 200 * time.Millisecond})
	_ = c.Ping(context.Background())
	err := c.StreamLogs(context.Background(), "c1", LogOptions{Follow: true}, func(LogLine) error { return nil })
	if !IsUnreachable(err) {
		t.Errorf("an engine that never answers: %v, want IsUnreachable", err)
	}
}
