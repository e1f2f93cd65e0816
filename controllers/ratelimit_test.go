package controllers

import (
	"fmt"
	"testing"
	"time"
)

func TestItemBackoffPerKey(t *testing.T) {
	b := NewItemBackoff(time.Second, 5*time.Second)
	var got []time.Duration
	for range 5 {
		got = append(got, b.When("gfa1"))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if !equalDurations(got, want) {
		t.Fatalf("delays %v, want %v (doubling, capped)", got, want)
	}
	if d := b.When("gfa2"); d != time.Second {
		t.Fatalf("another key starts at %v, want 1s: keys share no backoff", d)
	}
	if b.NumRequeues("gfa1") != 5 || b.NumRequeues("gfa2") != 1 {
		t.Fatalf("requeues %d, %d", b.NumRequeues("gfa1"), b.NumRequeues("gfa2"))
	}
	b.Forget("gfa1")
	if b.NumRequeues("gfa1") != 0 || b.When("gfa1") != time.Second || b.NumRequeues("gfa2") != 1 {
		t.Fatal("Forget did not reset the one key")
	}
	// Many failures do not overflow past the cap.
	for range 200 {
		b.When("gfa3")
	}
	if d := b.When("gfa3"); d != 5*time.Second {
		t.Fatalf("after 200 failures: %v", d)
	}
}

func TestBucketLimiterBoundsAllKeys(t *testing.T) {
	clock := newFakeClock()
	b := NewBucketLimiter(10, 2, clock)
	got := []time.Duration{b.When("a"), b.When("b"), b.When("c"), b.When("d")}
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond}
	if !equalDurations(got, want) {
		t.Fatalf("delays %v, want %v (burst 2, then 10 a second)", got, want)
	}
	clock.Step(time.Second)
	if d := b.When("e"); d != 0 {
		t.Fatalf("after a second the bucket is full again, got %v", d)
	}
	b.Forget("a")
	if b.NumRequeues("a") != 0 {
		t.Fatal("the bucket keeps no per-key count")
	}
}

func TestMaxOfTakesTheLongest(t *testing.T) {
	clock := newFakeClock()
	slow, fast := NewItemBackoff(time.Second, time.Minute), NewItemBackoff(10*time.Millisecond, time.Second)
	m := MaxOf{fast, slow, NewBucketLimiter(1, 1, clock)}
	if d := m.When("gfa1"); d != time.Second {
		t.Fatalf("first delay %v, want 1s (the slow backoff)", d)
	}
	if d := m.When("gfa2"); d != time.Second {
		t.Fatalf("second key %v, want 1s (bucket 1 s, slow 1 s)", d)
	}
	if d := m.When("gfa3"); d != 2*time.Second {
		t.Fatalf("third key %v, want 2s (the bucket's debt)", d)
	}
	m.When("gfa1")
	if n := m.NumRequeues("gfa1"); n != 2 {
		t.Fatalf("requeues %d, want 2", n)
	}
	m.Forget("gfa1")
	if slow.NumRequeues("gfa1") != 0 || fast.NumRequeues("gfa1") != 0 {
		t.Fatal("Forget did not reach every limiter")
	}
}

func TestDefaultRateLimiter(t *testing.T) {
	clock := newFakeClock()
	l := DefaultRateLimiter(clock)
	var last time.Duration
	for range 10 {
		last = l.When("gfa1")
	}
	if last != time.Minute {
		t.Fatalf("per node: %v after 10 failures, want the 60 s cap", last)
	}
	// Over every node: 100 at once, then 10 a second.
	l = DefaultRateLimiter(clock)
	var worst time.Duration
	for i := range 150 {
		worst = max(worst, l.When(fmt.Sprint("node", i)))
	}
	if worst != 5*time.Second {
		t.Fatalf("150 nodes failing at once: the last waits %v, want 5 s", worst)
	}
}
