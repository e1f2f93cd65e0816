package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Image garbage collection: the images removed and the bytes freed, fed
// by the controller (controllers.ImageGCMetrics), and each node's engine
// disk use, read from the status at scrape time.

type imageMetrics struct {
	removed, freed *prometheus.CounterVec
}

func newImageMetrics() imageMetrics {
	return imageMetrics{
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "image_gc", Name: "removed_images_total",
			Help: "Images of the camera's repository that image garbage collection removed, by node.",
		}, []string{"node"}),
		freed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "image_gc", Name: "freed_bytes_total",
			Help: "Bytes of the images image garbage collection removed (their size as the engine listed it), by node.",
		}, []string{"node"}),
	}
}

// ImageRemoved implements controllers.ImageGCMetrics.
func (m *Metrics) ImageRemoved(node string, bytes int64) {
	if m == nil {
		return
	}
	m.images.removed.WithLabelValues(node).Inc()
	m.images.freed.WithLabelValues(node).Add(float64(bytes))
}

// diskCollector exports each node's engine disk use as last checked.
type diskCollector struct {
	status                  func() []v1.NodeStatus
	images, size, fsPct, fs *prometheus.Desc
}

func newDiskCollector(status func() []v1.NodeStatus) *diskCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "node", name), help, []string{"node"}, nil)
	}
	return &diskCollector{
		status: status,
		images: d("images", "Images stored by the node's engine, as last checked."),
		size:   d("images_bytes", "Bytes the node's engine images take, as last checked."),
		fs:     d("disk_bytes", "Size of the filesystem of the node's engine data root (when known)."),
		fsPct:  d("disk_used_percent", "Use of the filesystem of the node's engine data root, in percent (when known)."),
	}
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.images
	ch <- c.size
	ch <- c.fs
	ch <- c.fsPct
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	if c.status == nil {
		return
	}
	for _, st := range c.status() {
		d := st.Disk
		if d == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.images, prometheus.GaugeValue, float64(d.Images), st.Name)
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(d.ImagesSize), st.Name)
		if d.FSSize > 0 {
			ch <- prometheus.MustNewConstMetric(c.fs, prometheus.GaugeValue, float64(d.FSSize), st.Name)
			ch <- prometheus.MustNewConstMetric(c.fsPct, prometheus.GaugeValue, float64(d.FSPercent), st.Name)
		}
	}
}
