package events

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }
func (c *clock) step()          { c.t = c.t.Add(time.Second) }

func newTest(size int) (*Recorder, *clock, map[string]int) {
	c := &clock{t: time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)}
	counts := map[string]int{}
	r := New(Options{Size: size, Now: c.now, Count: func(node, typ, reason string) { counts[node+"/"+typ+"/"+reason]++ }})
	return r, c, counts
}

func reasons(evs []v1.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s:%s×%d", e.Node, e.Reason, e.Count))
	}
	return out
}

func TestRingKeepsTheNewestPerNode(t *testing.T) {
	r, c, _ := newTest(3)
	for i := range 5 {
		r.Eventf("gfa1", v1.EventNormal, v1.ReasonStarted, "start %d", i)
		c.step()
	}
	r.Event("gfa2", v1.EventWarning, v1.ReasonCrashed, "exit 2")
	got := r.List(Filter{Nodes: []string{"gfa1"}})
	if len(got) != 3 || got[0].Message != "start 2" || got[2].Message != "start 4" {
		t.Fatalf("gfa1's ring: %+v", got)
	}
	// Another node's events have their own ring.
	if got := r.List(Filter{Nodes: []string{"gfa2"}}); len(got) != 1 {
		t.Fatalf("gfa2: %+v", got)
	}
	r.SetSize(1)
	if got := r.List(Filter{}); !cmp.Equal(reasons(got), []string{"gfa1:Started×1", "gfa2:Crashed×1"}) || got[0].Message != "start 4" {
		t.Fatalf("after shrinking: %v", reasons(got))
	}
}

func TestRepeatsAreCountedOnOneEvent(t *testing.T) {
	r, c, counts := newTest(10)
	r.Event("gfa1", v1.EventWarning, v1.ReasonBackOff, "keeps stopping (exit code 2)")
	first := c.t
	c.step()
	r.Event("gfa2", v1.EventNormal, v1.ReasonStarted, "x") // another node: not between
	c.step()
	r.Event("gfa1", v1.EventWarning, v1.ReasonBackOff, "keeps stopping (exit code 2)")
	c.step()
	r.Event("gfa1", v1.EventWarning, v1.ReasonBackOff, "keeps stopping (exit code 2)")
	got := r.List(Filter{})
	if !cmp.Equal(reasons(got), []string{"gfa2:Started×1", "gfa1:BackOff×3"}) {
		t.Fatalf("events: %v", reasons(got))
	}
	if !got[1].Time.Equal(first) || !got[1].LastTime.Equal(c.t) {
		t.Fatalf("times: first %v last %v", got[1].Time, got[1].LastTime)
	}
	// Something else between two equal events: two events.
	r.Event("gfa1", v1.EventNormal, v1.ReasonStarted, "x")
	r.Event("gfa1", v1.EventWarning, v1.ReasonBackOff, "keeps stopping (exit code 2)")
	if n := len(r.List(Filter{Nodes: []string{"gfa1"}})); n != 3 {
		t.Fatalf("%d events for gfa1, want 3", n)
	}
	if counts["gfa1/Warning/BackOff"] != 4 {
		t.Fatalf("metrics count: %v", counts)
	}
}

func TestListFiltersBySinceAndNode(t *testing.T) {
	r, c, _ := newTest(10)
	r.Event("", v1.EventNormal, v1.ReasonConfigAccepted, "revision a")
	c.step()
	mark := c.t
	r.Event("gfa1", v1.EventNormal, v1.ReasonCreated, "c")
	c.step()
	r.Event("fvc", v1.EventNormal, v1.ReasonCreated, "c")
	if got := reasons(r.List(Filter{Since: mark})); !cmp.Equal(got, []string{"gfa1:Created×1", "fvc:Created×1"}) {
		t.Fatalf("since: %v", got)
	}
	if got := reasons(r.List(Filter{Nodes: []string{""}})); !cmp.Equal(got, []string{":ConfigAccepted×1"}) {
		t.Fatalf("fliswarm's own: %v", got)
	}
	if got := reasons(r.Recent("gfa1", 5)); !cmp.Equal(got, []string{"gfa1:Created×1"}) {
		t.Fatalf("recent: %v", got)
	}
}

func TestFollowGetsThePastThenEachNewEvent(t *testing.T) {
	r, _, _ := newTest(10)
	r.Event("gfa1", v1.EventNormal, v1.ReasonCreated, "c")
	past, f := r.Follow(Filter{Nodes: []string{"gfa1"}})
	defer f.Close()
	if len(past) != 1 {
		t.Fatalf("past: %v", reasons(past))
	}
	r.Event("gfa2", v1.EventNormal, v1.ReasonCreated, "not followed")
	r.Event("gfa1", v1.EventNormal, v1.ReasonStarted, "s")
	r.Event("gfa1", v1.EventNormal, v1.ReasonStarted, "s")
	for _, want := range []string{"gfa1:Started×1", "gfa1:Started×2"} {
		if got := reasons([]v1.Event{<-f.C()}); got[0] != want {
			t.Fatalf("followed %s, want %s", got[0], want)
		}
	}
	f.Close()
	if _, ok := <-f.C(); ok {
		t.Fatal("C still open after Close")
	}
	f.Close() // twice is harmless
}

func TestAFollowerThatDoesNotReadIsCutOffNotWaitedFor(t *testing.T) {
	r, _, _ := newTest(10)
	_, f := r.Follow(Filter{})
	done := make(chan struct{})
	go func() {
		for i := range followBuffer + 10 {
			r.Eventf("gfa1", v1.EventNormal, v1.ReasonStarted, "%d", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("recording blocked on a follower that does not read")
	}
	if !f.Lost() {
		t.Fatal("the follower was not told it lost events")
	}
	n := 0
	for range f.C() {
		n++
	}
	if n != followBuffer {
		t.Fatalf("%d events delivered before the cut, want %d", n, followBuffer)
	}
}

func TestNilRecorderRecordsNothing(t *testing.T) {
	var r *Recorder
	r.Event("gfa1", v1.EventNormal, v1.ReasonStarted, "x")
	r.SetSize(3)
	if r.List(Filter{}) != nil || r.Recent("gfa1", 1) != nil {
		t.Fatal("a nil recorder returned events")
	}
	_, f := r.Follow(Filter{})
	if _, ok := <-f.C(); ok || f.Lost() {
		t.Fatal("a nil recorder's follower is not closed")
	}
	f.Close()
}
