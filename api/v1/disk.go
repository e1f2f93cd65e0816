package v1

import (
	"fmt"
	"time"
)

// DiskStatus is how much disk a node's engine uses.
type DiskStatus struct {
	// Images counts the engine's images; ImagesSize is their size in
	// bytes (shared layers once), ImagesReclaimable what removing those
	// no container uses would free. As the engine reports them.
	Images            int   `json:"images"`
	ImagesSize        int64 `json:"imagesSize"`
	ImagesReclaimable int64 `json:"imagesReclaimable"`
	// FSSize and FSUsed are the bytes of the filesystem holding the
	// engine's data root and FSPercent its use (used / (used +
	// available)), as df reports them in the running camera container;
	// 0 when not known (no camera running, or no df in its image).
	FSSize    int64 `json:"fsSize,omitempty"`
	FSUsed    int64 `json:"fsUsed,omitempty"`
	FSPercent int   `json:"fsPercent,omitempty"`
	// CheckedAt is when the engine was asked.
	CheckedAt time.Time `json:"checkedAt"`
}

// Summary says the disk use in a few words: "3 images, 1.2 GB (800 MB
// reclaimable); data root 87% of 100 GB used", without the
// data root's part when it is not known.
func (d *DiskStatus) Summary() string {
	noun := "images"
	if d.Images == 1 {
		noun = "image"
	}
	s := fmt.Sprintf("%d %s, %s (%s reclaimable)", d.Images, noun, HumanBytes(d.ImagesSize), HumanBytes(d.ImagesReclaimable))
	if d.FSSize > 0 {
		s += fmt.Sprintf("; data root %d%% of %s used", d.FSPercent, HumanBytes(d.FSSize))
	}
	return s
}

// HumanBytes writes n bytes with a decimal unit, as docker does: "1.2 GB".
func HumanBytes(n int64) string {
	const units = "kMGTPE"
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1000, 0
	for f >= 999.5 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g %cB", f, units[i])
}
