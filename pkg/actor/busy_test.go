package actor

import (
	"testing"

	"github.com/sdss/fliswarm/pkg/clu"
)

func TestBusyTracker(t *testing.T) {
	b := newBusyTracker()
	if busy, _ := b.busy("gfa1"); busy {
		t.Fatal("a camera nobody spoke to is busy")
	}
	if !isExpose("expose 5 --count 2") || isExpose("status") || isExpose("exposure") {
		t.Error("isExpose")
	}
	b.begin("gfa1")
	b.begin("gfa1")
	b.end("gfa1")
	if busy, why := b.busy("gfa1"); !busy || why != "exposing" {
		t.Errorf("one expose in flight: %v %q", busy, why)
	}
	b.end("gfa1")
	if busy, _ := b.busy("gfa1"); busy {
		t.Error("busy after every expose ended")
	}
	state := func(s string) clu.Reply {
		return clu.Reply{Data: clu.Object{{Key: "exposure_state", Value: clu.Object{{Key: "camera", Value: "gfa1n"}, {Key: "state", Value: s}}}}}
	}
	b.observe("gfa2", state("integrating"))
	if busy, why := b.busy("gfa2"); !busy || why != "exposing (exposure state integrating)" {
		t.Errorf("integrating: %v %q", busy, why)
	}
	b.observe("gfa2", clu.Reply{Data: clu.Object{{Key: "exposure_state", Value: []any{"gfa1n", "reading"}}}})
	if busy, _ := b.busy("gfa2"); !busy {
		t.Error("reading (as a list) is busy")
	}
	b.observe("gfa2", state("idle"))
	if busy, _ := b.busy("gfa2"); busy {
		t.Error("idle is not busy")
	}
	b.observe("gfa2", state("integrating"))
	b.forget("gfa2")
	if busy, _ := b.busy("gfa2"); busy {
		t.Error("a new camera is idle")
	}
}
