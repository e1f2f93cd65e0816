package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/controllers"
)

// The daemon hands its *Metrics to the controller as controllers.Metrics;
// the collection finds ImageRemoved on it.
var _ controllers.ImageGCMetrics = (*Metrics)(nil)

func TestImageGCSeries(t *testing.T) {
	m := New(func() []v1.NodeStatus {
		return []v1.NodeStatus{
			{Name: "gfa1", Disk: &v1.DiskStatus{Images: 3, ImagesSize: 300, FSSize: 1000, FSUsed: 870, FSPercent: 87}},
			{Name: "gfa2", Disk: &v1.DiskStatus{Images: 1, ImagesSize: 100}}, // no df in the image
			{Name: "gfa3"},
		}
	})
	m.ImageRemoved("gfa1", 100)
	m.ImageRemoved("gfa1", 50)
	body := scrape(t, m)
	for _, line := range []string{
		`fliswarm_image_gc_removed_images_total{node="gfa1"} 2`,
		`fliswarm_image_gc_freed_bytes_total{node="gfa1"} 150`,
		`fliswarm_node_images{node="gfa1"} 3`,
		`fliswarm_node_images_bytes{node="gfa2"} 100`,
		`fliswarm_node_disk_used_percent{node="gfa1"} 87`,
		`fliswarm_node_disk_bytes{node="gfa1"} 1000`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	for _, absent := range []string{`disk_used_percent{node="gfa2"}`, `fliswarm_node_images{node="gfa3"}`} {
		if strings.Contains(body, absent) {
			t.Errorf("metrics have %q, which is not known", absent)
		}
	}
	if n, err := testutil.GatherAndLint(m.Registry()); err != nil || len(n) > 0 {
		t.Errorf("lint: %v %v", n, err)
	}
	var nilM *Metrics
	nilM.ImageRemoved("gfa1", 1)
}
