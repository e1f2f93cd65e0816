package actor

import (
	"fmt"
	"strings"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// stepLine words a step the reconciler took on a node for `reconnect` as
// the original actor worded it, where it had a wording: the pull and its
// progress are debug lines, running a container is information, removing
// a running container and recreating a volume are warnings.
func stepLine(s v1.DeployStep) (opscore.Code, opscore.Keyword) {
	n := s.Node
	switch s.Kind {
	case v1.StepPull:
		return opscore.Debug, text("%s: pulling latest image.", n)
	case v1.StepPullProgress:
		status := ""
		if s.Status != "" {
			status = " (" + strings.TrimSuffix(s.Status, ".") + ")"
		}
		return opscore.Debug, text("%s: pulling %s: %s of %s%s.", n, s.Target, megabytes(s.Current), megabytes(s.Total), status)
	case v1.StepPulled:
		id := "unknown image"
		if s.ImageID != "" {
			id = "image " + shortImageID(s.ImageID)
		}
		status := ""
		if s.Status != "" {
			status = ": " + strings.TrimSuffix(s.Status, ".")
		}
		return opscore.Debug, text("%s: pulled %s (%s)%s.", n, s.Target, id, status)
	case v1.StepRemoveContainer:
		if s.Running {
			return opscore.Warning, text("%s: removing running container %s.", n, s.Target)
		}
		return opscore.Debug, text("%s: removing container %s (%s).", n, s.Target, s.Reason)
	case v1.StepRemoveVolume:
		return opscore.Warning, text("%s: recreating existing volume %s.", n, s.Target)
	case v1.StepCreateVolume:
		return opscore.Debug, text("%s: creating volume %s.", n, s.Target)
	case v1.StepRun:
		return opscore.Info, text("%s: running %s from %s.", n, s.Target, s.Image)
	case v1.StepStart:
		return opscore.Info, text("%s: starting container %s (%s).", n, s.Target, s.Reason)
	case v1.StepUnpause:
		return opscore.Info, text("%s: unpausing container %s.", n, s.Target)
	}
	return opscore.Debug, text("%s: %s %s.", n, s.Kind, s.Target)
}

// megabytes writes a byte count as MB with one decimal.
func megabytes(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// shortImageID is an image id's first 12 hex digits.
func shortImageID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}
