package manager

import (
	"context"
	"errors"
	"testing"
)

// part is a fake Runnable: it records Bind and Start, fails Bind with
// bindErr, and its Start returns failErr once fail is closed, or nil once
// ctx ends.
type part struct {
	bindErr       error
	failErr       error
	fail          chan struct{}
	bound, ended  bool
	started, done chan struct{}
}

func newPart() *part {
	return &part{fail: make(chan struct{}), started: make(chan struct{}), done: make(chan struct{})}
}

func (p *part) Bind() error { p.bound = true; return p.bindErr }

func (p *part) Start(ctx context.Context) error {
	close(p.started)
	defer close(p.done)
	select {
	case <-ctx.Done():
		p.ended = true
		return nil
	case <-p.fail:
		return p.failErr
	}
}

func TestRunBindFailureStopsThoseStarted(t *testing.T) {
	a, b, c := newPart(), newPart(), newPart()
	b.bindErr = errors.New("port in use")
	readied := false
	err := run(context.Background(), []Runnable{a, b, c}, func() { readied = true })
	if !errors.Is(err, b.bindErr) {
		t.Fatalf("run = %v, want the bind error", err)
	}
	<-a.done // run waited for it
	if !a.ended {
		t.Errorf("the part started before the failed bind was not stopped")
	}
	if c.bound {
		t.Errorf("a part after the failed bind was bound")
	}
	select {
	case <-b.started:
		t.Errorf("the part whose bind failed was started")
	default:
	}
	if readied {
		t.Errorf("ready called although a bind failed")
	}
}

func TestRunFirstErrorStopsTheRest(t *testing.T) {
	a, b := newPart(), newPart()
	b.failErr = errors.New("broken")
	ready := make(chan struct{})
	res := make(chan error, 1)
	go func() { res <- run(context.Background(), []Runnable{a, b}, func() { close(ready) }) }()
	<-ready
	if !a.bound || !b.bound {
		t.Errorf("ready before every part was bound")
	}
	close(b.fail)
	if err := <-res; !errors.Is(err, b.failErr) {
		t.Fatalf("run = %v, want the part's error", err)
	}
	if !a.ended {
		t.Errorf("run returned before the other part stopped")
	}
}

func TestRunEndsWithContext(t *testing.T) {
	a := newPart()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		res <- run(ctx, []Runnable{a, RunnableFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })}, nil)
	}()
	<-a.started
	cancel()
	if err := <-res; err != nil || !a.ended {
		t.Fatalf("run after ctx ended = %v (part ended: %v)", err, a.ended)
	}
}
