package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeLogSource serves each node seven old lines, then the lines fed to
// it, and counts the streams open.
type fakeLogSource struct {
	mu     sync.Mutex
	active map[string]int
	feed   map[string]chan string
}

func newFakeLogSource(nodes ...string) *fakeLogSource {
	f := &fakeLogSource{active: map[string]int{}, feed: map[string]chan string{}}
	for _, n := range nodes {
		f.feed[n] = make(chan string, 10)
	}
	return f
}

func (f *fakeLogSource) FollowLogs(ctx context.Context, node string, tail int, fn func(time.Time, string)) error {
	f.mu.Lock()
	f.active[node]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.active[node]--
		f.mu.Unlock()
	}()
	old := make([]string, 7)
	for i := range old {
		old[i] = fmt.Sprintf("%s old %d", node, i)
	}
	for _, l := range old[max(0, len(old)-tail):] {
		fn(time.Now(), l)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case l := <-f.feed[node]:
			fn(time.Now(), l)
		}
	}
}

func (f *fakeLogSource) open() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for n, k := range f.active {
		if k != 0 {
			out[n] = k
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func texts(ls []LogLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Text)
	}
	return out
}

// The cards get each enabled camera's last lines, live, while a page is
// open; nothing is followed once the page is closed or for a node
// disabled.
func TestPageFollowsCameraLogsWhileOpen(t *testing.T) {
	d := newFakeDaemon()
	d.observe("gfa1", true, 0)
	d.observe("gfa2", true, 0)
	src := newFakeLogSource("gfa1", "gfa2")
	s := New(Options{Status: d.Status, Subscribe: d.store.Subscribe, MinInterval: 20 * time.Millisecond, Logs: src})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); cancel(); <-done })

	r := openEvents(t, srv.URL)
	want := []string{"gfa1 old 2", "gfa1 old 3", "gfa1 old 4", "gfa1 old 5", "gfa1 old 6"}
	r.until("gfa1's last 5 lines", func(s Snapshot) bool { return slices.Equal(texts(s.Logs["gfa1"]), want) })

	src.feed["gfa1"] <- "gfa1 new"
	got := r.until("gfa1's new line", func(s Snapshot) bool {
		l := s.Logs["gfa1"]
		return len(l) > 0 && l[len(l)-1].Text == "gfa1 new"
	})
	if len(got.Logs["gfa1"]) != LogLinesPerNode {
		t.Errorf("gfa1 keeps %d lines: %q", len(got.Logs["gfa1"]), texts(got.Logs["gfa1"]))
	}

	d.store.SetEnabled("gfa2", false)
	r.until("gfa2's lines gone", func(s Snapshot) bool { _, ok := s.Logs["gfa2"]; return !ok })
	waitFor(t, "gfa2 no longer followed", func() bool { return src.open()["gfa2"] == 0 })
	if f := s.hub.logs.following(); !slices.Equal(f, []string{"gfa1"}) {
		t.Errorf("following %v with gfa2 disabled", f)
	}

	r.cancel() // the page closes
	waitFor(t, "no camera followed once the page closed", func() bool { return len(src.open()) == 0 && len(s.hub.logs.following()) == 0 })

	r = openEvents(t, srv.URL) // and opens again
	r.until("gfa1's lines again", func(s Snapshot) bool { return len(s.Logs["gfa1"]) == LogLinesPerNode })
	if o := src.open(); o["gfa1"] != 1 || len(o) != 1 {
		t.Errorf("streams open: %v, want one for gfa1", o)
	}
}
