package loglimit

import (
	"testing"
	"time"
)

// A burst goes through, the lines after it are held back and counted, and
// the first line let through after a refill says how many were held back.
func TestBurstThenRefillReportsSuppressed(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(200*time.Millisecond, 5, func() time.Time { return now })
	for i := range 5 {
		if ok, sup := l.Allow(); !ok || sup != 0 {
			t.Fatalf("line %d of the burst: ok=%v suppressed=%d, want true, 0", i, ok, sup)
		}
	}
	for i := range 4 {
		if ok, _ := l.Allow(); ok {
			t.Fatalf("line %d after the burst was let through", i)
		}
	}
	now = now.Add(199 * time.Millisecond)
	if ok, _ := l.Allow(); ok {
		t.Fatal("a line was let through before one interval passed")
	}
	now = now.Add(time.Millisecond)
	if ok, sup := l.Allow(); !ok || sup != 5 {
		t.Fatalf("after one interval: ok=%v suppressed=%d, want true, 5", ok, sup)
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("one interval refilled more than one line")
	}
	now = now.Add(time.Hour)
	for i := range 5 {
		if ok, sup := l.Allow(); !ok || (i == 0) != (sup == 1) {
			t.Fatalf("line %d after a long pause: ok=%v suppressed=%d", i, ok, sup)
		}
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("a long pause refilled more than the burst")
	}
}

// With a burst of one, one line goes through per interval.
func TestOnePerInterval(t *testing.T) {
	now := time.Unix(0, 0)
	l := New(time.Second, 1, func() time.Time { return now })
	if ok, _ := l.Allow(); !ok {
		t.Fatal("first line held back")
	}
	if ok, _ := l.Allow(); ok {
		t.Fatal("second line at once let through")
	}
	now = now.Add(time.Second)
	if ok, sup := l.Allow(); !ok || sup != 1 {
		t.Fatalf("after a second: ok=%v suppressed=%d, want true, 1", ok, sup)
	}
}
