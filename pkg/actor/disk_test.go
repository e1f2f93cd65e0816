package actor

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func TestDiskLines(t *testing.T) {
	spec := testSpec(map[string]int{})
	high := 85
	spec.ImageGC.HighPercent = &high
	st := v1.NodeStatus{Name: "gfa1"}
	if got := render(diskLines(spec, st)); len(got) != 0 {
		t.Fatalf("not checked yet: %v, want no line", got)
	}
	st.Disk = &v1.DiskStatus{Images: 2, ImagesSize: 240_000_000, ImagesReclaimable: 120_000_000}
	want := []string{`d text="Node gfa1 disk: 2 images, 240 MB (120 MB reclaimable)."`}
	if diff := cmp.Diff(want, render(diskLines(spec, st))); diff != "" {
		t.Errorf("data root not known (-want +got):\n%s", diff)
	}
	st.Disk.FSSize, st.Disk.FSUsed, st.Disk.FSPercent = 64_000_000_000, 57_600_000_000, 90
	want = []string{
		`d text="Node gfa1 disk: 2 images, 240 MB (120 MB reclaimable); data root 90% of 64 GB used."`,
		`w text="Disk of node gfa1 is 90% full (image_gc.high_percent 85)."`,
	}
	if diff := cmp.Diff(want, render(diskLines(spec, st))); diff != "" {
		t.Errorf("data root 90%% full (-want +got):\n%s", diff)
	}
	off := 0
	spec.ImageGC.HighPercent = &off
	if got := render(diskLines(spec, st)); len(got) != 1 {
		t.Errorf("high_percent 0 (the default): %v, want the debug line only", got)
	}
}
