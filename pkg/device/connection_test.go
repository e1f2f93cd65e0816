package device

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReconnectAfterServerRestart(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	var mu sync.Mutex
	var states []bool
	c := startClient(t, cam.addr, Options{
		OnState: func(up bool, err error) {
			mu.Lock()
			states = append(states, up)
			mu.Unlock()
		},
	})
	if _, err := c.Send(context.Background(), "status", nil); err != nil {
		t.Fatal(err)
	}

	cam.stop()
	eventually(t, "disconnect", func() bool { return !c.Connected() })
	// Let a few dials fail against the closed port.
	eventually(t, "failed dials", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(states) >= 4
	})
	cam.restart()
	eventually(t, "reconnect", c.Connected)

	res, err := c.Send(context.Background(), "status", nil)
	if err != nil || !res.OK() || res.ID != 1 {
		t.Fatalf("Send after reconnect = %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if states[0] != true || states[1] != false || states[len(states)-1] != true {
		t.Errorf("OnState sequence %v, want true, false..., true", states)
	}
	for _, up := range states[1 : len(states)-1] {
		if up {
			t.Errorf("OnState sequence %v has an extra connection", states)
		}
	}
}

func TestKickSkipsBackoff(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	// A backoff far longer than the test's patience: only Kick can
	// reconnect in time.
	c := startClient(t, cam.addr, Options{InitialBackoff: time.Hour, MaxBackoff: time.Hour})
	cam.stop()
	eventually(t, "disconnect", func() bool { return !c.Connected() })
	cam.restart()
	c.Kick()
	eventually(t, "reconnect after Kick", c.Connected)
	if _, err := c.Send(context.Background(), "ping", nil); err != nil {
		t.Fatal(err)
	}
}

func TestDisconnectPauseResume(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{})

	ch := sendAsync(c, context.Background(), "expose 5", nil)
	cam.next()
	c.Disconnect()
	out := wait(t, ch)
	if !errors.Is(out.err, ErrDisconnected) || !strings.Contains(out.err.Error(), "disconnect requested") {
		t.Fatalf("Send after Disconnect = %v", out.err)
	}
	// Disconnect lets Run reconnect by itself.
	eventually(t, "reconnect after Disconnect", func() bool { return cam.acceptedCount() == 2 && c.Connected() })

	c.Pause()
	eventually(t, "paused", func() bool { return !c.Connected() })
	c.Kick() // does not override Pause
	time.Sleep(300 * time.Millisecond)
	if c.Connected() || cam.acceptedCount() != 2 {
		t.Fatalf("client reconnected while paused (accepted %d)", cam.acceptedCount())
	}
	if _, err := c.Send(context.Background(), "status", nil); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send while paused = %v", err)
	}
	c.Resume()
	eventually(t, "reconnect after Resume", c.Connected)
}

func TestNotConnected(t *testing.T) {
	// Never run.
	c := New("gfa2", "127.0.0.1:1", Options{})
	_, err := c.Send(context.Background(), "status", nil)
	if !errors.Is(err, ErrNotConnected) || !strings.Contains(err.Error(), "gfa2") {
		t.Fatalf("Send = %v, want ErrNotConnected naming gfa2", err)
	}

	// Running against a closed port: failed dials reach OnState.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	errs := make(chan error, 100)
	c = New("gfa2", addr, Options{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnState: func(up bool, err error) {
			if up {
				t.Error("connected to a closed port")
			}
			select {
			case errs <- err:
			default:
			}
		}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil || !strings.Contains(err.Error(), "gfa2") {
				t.Errorf("OnState error %v does not name gfa2", err)
			}
		case <-time.After(waitLong):
			t.Fatal("no failed dial reported")
		}
	}
	if _, err := c.Send(context.Background(), "status", nil); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Send = %v, want ErrNotConnected", err)
	}
	if err := c.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestRunCancelEndsCommands(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := New("gfa1", cam.addr, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "connection", c.Connected)

	ch := sendAsync(c, context.Background(), "expose 5", nil)
	cam.next()
	cancel()
	out := wait(t, ch)
	if !errors.Is(out.err, ErrDisconnected) || !errors.Is(out.err, context.Canceled) {
		t.Fatalf("Send after Run ended = %v", out.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return")
	}
	if c.Connected() {
		t.Error("still connected after Run returned")
	}
}
