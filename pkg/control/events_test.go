package control

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

func TestEventsListThenFollow(t *testing.T) {
	rec := events.New(events.Options{})
	rec.Event("gfa1", v1.EventWarning, v1.ReasonCrashed, "exit code 2")
	rec.Event("gfa2", v1.EventNormal, v1.ReasonStarted, "other node")
	c := serve(t, &fakeBackend{events: rec})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var got []string
	if err := c.Events(ctx, v1.EventsRequest{Nodes: []string{"gfa1"}}, func(ev v1.Event) error {
		got = append(got, ev.Reason)
		return nil
	}); err != nil || len(got) != 1 || got[0] != v1.ReasonCrashed {
		t.Fatalf("list: %v %v", got, err)
	}
	if err := c.Events(ctx, v1.EventsRequest{Nodes: []string{"nope"}}, func(v1.Event) error { return nil }); err == nil ||
		!strings.Contains(err.Error(), "nope is not configured") {
		t.Fatalf("unknown node: %v", err)
	}

	// A follower: the event kept, then one recorded after it connected.
	seen := make(chan v1.Event, 10)
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- c.Events(fctx, v1.EventsRequest{Nodes: []string{"gfa1"}, Follow: true}, func(ev v1.Event) error {
			seen <- ev
			return nil
		})
	}()
	if ev := <-seen; ev.Reason != v1.ReasonCrashed {
		t.Fatalf("first followed: %+v", ev)
	}
	rec.Event("gfa1", v1.EventNormal, v1.ReasonStarted, "after")
	select {
	case ev := <-seen:
		if ev.Reason != v1.ReasonStarted {
			t.Fatalf("then: %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the new event did not reach the follower")
	}
	fcancel()
	if err := <-done; err != nil {
		t.Fatalf("a follower ended by its caller: %v", err)
	}
}
