package actor

import (
	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// diskLines say a node's engine disk use (image_gc), as a debug text line
// since tron's dictionary has no keyword for it, and warn when the data
// root is fuller than image_gc.high_percent.
func diskLines(spec *v1.Swarm, st v1.NodeStatus) []line {
	d := st.Disk
	if d == nil {
		return nil
	}
	lines := []line{{Code: opscore.Debug, Keywords: []opscore.Keyword{text("Node %s disk: %s.", st.Name, d.Summary())}}}
	if high := spec.ImageGC.GCHighPercent(); high > 0 && d.FSSize > 0 && d.FSPercent > high {
		lines = append(lines, line{Code: opscore.Warning, Keywords: []opscore.Keyword{
			text("Disk of node %s is %d%% full (image_gc.high_percent %d).", st.Name, d.FSPercent, high)}})
	}
	return lines
}
