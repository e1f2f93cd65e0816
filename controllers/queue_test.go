package controllers

import (
	"sync"
	"testing"
	"time"
)

func TestQueueCollapsesAndNeverRunsAKeyTwice(t *testing.T) {
	q := NewQueue(NewItemBackoff(time.Millisecond, 10*time.Millisecond), nil)
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
	k2, _ := q.Get()
	if k2 != "gfa2" {
		t.Fatalf("second Get = %q, want gfa2", k2)
	}
	if q.Len() != 0 {
		t.Fatalf("gfa1 was queued while being processed")
	}
	q.Done("gfa1")
	if q.Len() != 1 {
		t.Fatalf("gfa1 not re-queued after Done")
	}
	q.Done("gfa2")
	q.ShutDown()
	if _, ok := q.Get(); ok {
		t.Fatal("Get after ShutDown returned a key")
	}
}

func TestQueueConcurrentWorkersExclusive(t *testing.T) {
	q := NewQueue(NewItemBackoff(time.Millisecond, 10*time.Millisecond), nil)
	var mu sync.Mutex
	active := map[string]bool{}
	var violations, processed int
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
				time.Sleep(time.Millisecond)
				mu.Lock()
				active[k] = false
				mu.Unlock()
				q.Done(k)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		q.Add([]string{"a", "b", "c"}[i%3])
	}
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	q.ShutDown()
	wg.Wait()
	if violations > 0 {
		t.Fatalf("%d times a key was processed by two workers at once", violations)
	}
	if processed == 0 || processed > 200 {
		t.Fatalf("processed %d", processed)
	}
}

func TestQueueBackoffGrowsAndForgetResets(t *testing.T) {
	q := NewQueue(NewItemBackoff(10*time.Millisecond, 80*time.Millisecond), nil)
	defer q.ShutDown()
	var ds []time.Duration
	for i := 0; i < 6; i++ {
		ds = append(ds, q.AddRateLimited("gfa1"))
	}
	// Jitter is ±20%: the fourth interval (nominal 80 ms, capped) must
	// exceed the first (nominal 10 ms), and none may exceed max+20%.
	if ds[3] <= ds[0] {
		t.Errorf("backoff did not grow: %v", ds)
	}
	for _, d := range ds {
		if d > 96*time.Millisecond {
			t.Errorf("backoff %v above the cap: %v", d, ds)
		}
	}
	q.Forget("gfa1")
	if d := q.AddRateLimited("gfa1"); d > 12*time.Millisecond {
		t.Errorf("after Forget the backoff restarts, got %v", d)
	}
	k, ok := q.Get() // the delayed add arrives
	if !ok || k != "gfa1" {
		t.Fatalf("Get = %q, %v", k, ok)
	}
}
