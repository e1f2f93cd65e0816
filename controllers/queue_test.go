package controllers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// eventually polls cond for up to 10 s of real time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func TestQueueCollapsesAndNeverRunsAKeyTwice(t *testing.T) {
	q := NewQueue(NewItemBackoff(time.Millisecond, 10*time.Millisecond), newFakeClock())
	q.Add("gfa1")
	q.Add("gfa1")
	q.Add("gfa2")
	if q.Len() != 2 {
		t.Fatalf("Len = %d, want 2 (repeated adds collapse)", q.Len())
	}
	k, _ := q.Get()
	if k != "gfa1" {
		t.Fatalf("Get = %q", k)
	}
	// Added while processing: not handed out until Done.
	q.Add("gfa1")
	q.Add("gfa1")
	k2, _ := q.Get()
	if k2 != "gfa2" {
		t.Fatalf("second Get = %q, want gfa2", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("gfa1 was queued while being processed")
	}
	q.Done("gfa1")
	if q.Len() != 1 {
		t.Fatalf("gfa1 not re-queued (once) after Done: Len %d", q.Len())
	}
	q.Done("gfa2")
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown returned a key")
	}
}

func TestQueueConcurrentWorkersExclusive(t *testing.T) {
	q := NewQueue(NewItemBackoff(time.Millisecond, 10*time.Millisecond), newFakeClock())
	var mu sync.Mutex
	active := map[string]bool{}
	var violations, processed int
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				k, ok := q.Get()
				if !ok {
					return
				}
				mu.Lock()
				if active[k] {
					violations++
				}
				active[k] = true
				processed++
				mu.Unlock()
				time.Sleep(100 * time.Microsecond) // work, during which k is added again
				mu.Lock()
				active[k] = false
				mu.Unlock()
				q.Done(k)
			}
		})
	}
	for i := range 300 {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	eventually(t, "the queue to drain", q.idle)
	q.ShutDown()
	wg.Wait()
	if violations > 0 {
		t.Fatalf("%d times a key was processed by two workers at once", violations)
	}
	if processed < 3 || processed > 300 {
		t.Fatalf("processed %d", processed)
	}
}

func TestQueueAddAfterOnlyMovesEarlier(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(nil, clock)
	defer q.ShutDown()

	q.AddAfter("later", 10*time.Second)
	q.AddAfter("later", 20*time.Second) // later than the pending one: dropped
	q.AddAfter("sooner", 20*time.Second)
	q.AddAfter("sooner", 5*time.Second) // sooner: replaces it
	clock.Step(5 * time.Second)
	if k, _ := q.Get(); k != "sooner" || q.Len() != 0 {
		t.Fatalf("at 5 s: Get %q, Len %d; want sooner alone", k, q.Len())
	}
	clock.Step(5 * time.Second)
	if q.Len() != 1 {
		t.Fatalf("at 10 s: Len %d, want 1 (later)", q.Len())
	}
	if k, _ := q.Get(); k != "later" {
		t.Fatalf("at 10 s: Get %q, want later", k)
	}
	q.Done("later")
	clock.Step(20 * time.Second)
	if q.Len() != 0 {
		t.Fatal("a replaced or dropped delayed add fired anyway")
	}

	// A delayed add that fires while the key is processed comes back
	// after Done.
	q.AddAfter("sooner", time.Second)
	clock.Step(time.Second)
	if q.Len() != 0 {
		t.Fatal("a key being processed was queued")
	}
	q.Done("sooner")
	if k, _ := q.Get(); k != "sooner" {
		t.Fatalf("Get %q after Done, want sooner", k)
	}
	q.Done("sooner")

	// Not positive: now. After ShutDown: never.
	q.AddAfter("now", 0)
	if q.Len() != 1 {
		t.Fatal("AddAfter(0) did not add at once")
	}
	q.AddAfter("never", time.Second)
	q.ShutDown()
	clock.Step(time.Second)
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown returned a key")
	}
}

func TestQueueRateLimitedRequeue(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(NewItemBackoff(time.Second, 8*time.Second), clock)
	defer q.ShutDown()
	var ds []time.Duration
	for range 5 {
		d := q.AddRateLimited("gfa1")
		ds = append(ds, d)
		clock.Step(d - time.Millisecond)
		if q.Len() != 0 {
			t.Fatalf("gfa1 came back before its %v delay", d)
		}
		clock.Step(time.Millisecond)
		if k, _ := q.Get(); k != "gfa1" {
			t.Fatalf("Get %q after the delay", k)
		}
		q.Done("gfa1")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if !equalDurations(ds, want) || q.NumRequeues("gfa1") != 5 {
		t.Fatalf("delays %v, requeues %d; want %v, 5", ds, q.NumRequeues("gfa1"), want)
	}
	q.Forget("gfa1")
	if q.NumRequeues("gfa1") != 0 || q.AddRateLimited("gfa1") != time.Second {
		t.Fatal("Forget did not restart the backoff")
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// scripted reconciles with the next of its results, recording when.
type scripted struct {
	clock   *fakeClock
	mu      sync.Mutex
	results []error // nil: success
	after   time.Duration
	calls   []time.Duration
}

func (s *scripted) Reconcile(context.Context, string) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, s.clock.Since())
	if len(s.calls) <= len(s.results) {
		if err := s.results[len(s.calls)-1]; err != nil {
			return Result{}, err
		}
	}
	return Result{RequeueAfter: s.after}, nil
}

func (s *scripted) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func TestControllerRetriesFailuresAndHonoursRequeueAfter(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(NewItemBackoff(time.Second, time.Minute), clock)
	boom := errors.New("boom")
	rec := &scripted{clock: clock, results: []error{boom, boom, boom, nil}, after: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { (&Controller{Queue: q, Reconciler: rec, Workers: 2}).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	q.Add("gfa1")
	step := func(calls int, d time.Duration) {
		t.Helper()
		eventually(t, "the reconcile", func() bool { return rec.n() == calls && q.idle() })
		clock.Step(d)
	}
	step(1, time.Second)    // failed: back in 1 s
	step(2, 2*time.Second)  // 2 s
	step(3, 4*time.Second)  // 4 s
	step(4, 10*time.Second) // success: forgotten, back after RequeueAfter
	step(5, 0)
	if q.NumRequeues("gfa1") != 0 {
		t.Fatalf("requeues %d after a success", q.NumRequeues("gfa1"))
	}
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 17 * time.Second}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !equalDurations(rec.calls, want) {
		t.Fatalf("reconciles at %v, want %v", rec.calls, want)
	}
}

type reconcileFunc func() (Result, error)

func (f reconcileFunc) Reconcile(context.Context, string) (Result, error) { return f() }

func TestControllerForgetsFailuresAfterASuccess(t *testing.T) {
	clock := newFakeClock()
	q := NewQueue(NewItemBackoff(time.Second, time.Minute), clock)
	var mu sync.Mutex
	calls := 0
	rec := reconcileFunc(func() (Result, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return Result{}, errors.New("boom")
		}
		return Result{}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { (&Controller{Queue: q, Reconciler: rec}).Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	n := func() int { mu.Lock(); defer mu.Unlock(); return calls }

	q.Add("gfa1")
	eventually(t, "the first reconcile", func() bool { return n() == 1 && q.idle() })
	clock.Step(time.Second)
	eventually(t, "the retry", func() bool { return n() == 2 && q.idle() })
	if q.NumRequeues("gfa1") != 2 {
		t.Fatalf("requeues %d after two failures", q.NumRequeues("gfa1"))
	}
	clock.Step(2 * time.Second)
	eventually(t, "the success", func() bool { return n() == 3 && q.idle() })
	if q.NumRequeues("gfa1") != 0 {
		t.Fatalf("requeues %d after a success, want 0", q.NumRequeues("gfa1"))
	}
	clock.Step(time.Hour)
	if q.Len() != 0 || n() != 3 {
		t.Fatal("a success with no RequeueAfter came back")
	}
}
