package linesession

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// After KickFor, a peer that refuses a few times is dialled again every
// `every`, not after the (here 10-minute) backoff; after the window, and
// after a good connection, the backoff is back.
func TestKickForRetriesFastWhileThePeerStarts(t *testing.T) {
	k := NewKeeper(10*time.Minute, 10*time.Minute)
	var dials, refuse atomic.Int64
	refuse.Store(5)
	connected := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, func(context.Context) (net.Conn, error) {
			dials.Add(1)
			if refuse.Add(-1) >= 0 {
				return nil, errors.New("connection refused")
			}
			a, b := net.Pipe()
			b.Close()
			return a, nil
		}, func(_ context.Context, c net.Conn) bool {
			c.Close()
			connected <- struct{}{}
			return true
		}, nil)
	}()
	// The first dial fails and the keeper waits out its 10 minutes.
	waitUntil(t, func() bool { return dials.Load() == 1 })
	start := time.Now()
	k.KickFor(5*time.Millisecond, time.Minute)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatalf("not connected 10 s after KickFor (%d dials)", dials.Load())
	}
	if el := time.Since(start); el < 4*5*time.Millisecond {
		t.Fatalf("connected after %v: the retries did not wait their 5 ms", el)
	}
	// Connected once: the fast retries are over, failures back off again.
	refuse.Store(1 << 30)
	n := dials.Load()
	time.Sleep(100 * time.Millisecond)
	if d := dials.Load() - n; d > 1 {
		t.Fatalf("%d dials in 100 ms after a good connection, want at most 1", d)
	}
	// A window that has passed does not retry fast either.
	k.KickFor(time.Millisecond, time.Nanosecond)
	time.Sleep(10 * time.Millisecond)
	n = dials.Load()
	time.Sleep(100 * time.Millisecond)
	if d := dials.Load() - n; d > 0 {
		t.Fatalf("%d dials after the window ended", d)
	}
	cancel()
	<-done
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
	}
}
