package actor

import (
	"context"
	"slices"
	"strings"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

func (a *Actor) status(ctx context.Context, cmd *opscore.Command) {
	if _, ok := a.parseNoArgs(cmd); !ok {
		return
	}
	spec := a.currentSpec()
	enabled := a.enabled(spec)
	writeLines(cmd, []line{enabledNodesLine(enabled)})
	cmd.Write(opscore.Info, hubKeyword(a.HubStatus(ctx)))
	if msg := a.configError(); msg != "" {
		cmd.Write(opscore.Warning, a.configErrorKeyword(msg))
	}
	a.writeNodeStatus(cmd, spec, enabled)
	cmd.Finish()
}

func enabledNodesLine(enabled []string) line {
	vals := make([]any, len(enabled))
	for i, n := range enabled {
		vals[i] = n
	}
	return line{Code: opscore.Info, Keywords: []opscore.Keyword{opscore.KW("enabledNodes", vals...)}}
}

// writeNodeStatus writes the status lines of nodes, from the reconciler's
// last observation.
func (a *Actor) writeNodeStatus(cmd *opscore.Command, spec *v1.Swarm, nodes []string) {
	all := a.rec.Status()
	for _, n := range nodes {
		i := slices.IndexFunc(all, func(st v1.NodeStatus) bool { return st.Name == n })
		var st v1.NodeStatus
		if i >= 0 {
			st = all[i]
		} else {
			node := spec.Nodes[n]
			st = v1.NodeStatus{Name: n, Host: node.Host, DockerHost: node.DockerClient}
		}
		writeLines(cmd, nodeStatusLines(spec, st))
		if ok, reason := a.cams.State(n); !ok && a.device(n) != nil {
			cmd.Write(opscore.Warning, text("Camera %s is not connected: %s.", n, strings.TrimSuffix(reason, ".")))
		}
	}
}

// baseImage is the image the original names in its "multiple containers"
// warning: the registry and the image without its tag.
func baseImage(spec *v1.Swarm) string {
	img := spec.Image
	if i := strings.LastIndexByte(img, ':'); i > strings.LastIndexByte(img, '/') {
		img = img[:i]
	}
	if spec.Registry != "" {
		img = spec.Registry + "/" + img
	}
	return img
}

// nodeStatusLines renders one node's status as the original's
// Node.report_status does: warnings first, then node=, then (when its
// Docker engine answers) container= and one volume= per configured
// volume, each after its warning.
//
// Unlike the original, which stops at the first of "not pinging back" and
// "Docker not answering", both facts are reported, because the reconciler
// observed both; and the containers and volumes are reported whenever the
// engine answered.
func nodeStatusLines(spec *v1.Swarm, st v1.NodeStatus) []line {
	var lines []line
	warn := func(format string, args ...any) {
		lines = append(lines, line{Code: opscore.Warning, Keywords: []opscore.Keyword{text(format, args...)}})
	}
	debug := func(kw opscore.Keyword) {
		lines = append(lines, line{Code: opscore.Debug, Keywords: []opscore.Keyword{kw}})
	}
	host, dockerHost := st.Host, st.DockerHost
	if n, ok := spec.Nodes[st.Name]; ok {
		if host == "" {
			host = n.Host
		}
		if dockerHost == "" {
			dockerHost = n.DockerClient
		}
	}

	switch {
	case st.ObservedAt.IsZero() && !st.Reachable && !st.DockerAlive:
		warn("Node %s has not been checked yet.", host)
	default:
		if !st.Reachable {
			warn("Node %s is not pinging back.", host)
		}
		if !st.DockerAlive {
			warn("Docker client on node %s is not connected.", host)
		}
	}
	lines = append(lines, line{Code: opscore.Info, Keywords: []opscore.Keyword{
		opscore.KW("node", st.Name, host, dockerHost, st.Reachable, st.DockerAlive),
	}})
	if !st.DockerAlive {
		return lines
	}

	c := st.Container
	switch {
	case c == nil || c.ID == "" || (c.State != "" && c.State != "running"):
		warn("No containers running on %s.", host)
		debug(opscore.KW("container", st.Name, opscore.NA))
	case c.Count > 1:
		warn("Multiple containers with image %s running on node %s.", baseImage(spec), host)
		debug(opscore.KW("container", st.Name, opscore.NA))
	default:
		debug(opscore.KW("container", st.Name, c.ShortID()))
		if c.Adopted {
			// Not in the original's dictionary: a text line, so that
			// container= keeps its values.
			debug(text("%s: container %s was not created by fliswarm; it runs the spec and was adopted.", st.Name, c.ShortID()))
		}
	}

	for _, vname := range spec.VolumeNames() {
		i := slices.IndexFunc(st.Volumes, func(v v1.VolumeStatus) bool { return v.Name == vname })
		if i < 0 || !st.Volumes[i].Exists {
			warn("Volume %s not present in %s.", vname, st.Name)
			debug(opscore.KW("volume", st.Name, vname, false, opscore.NA))
			continue
		}
		dev := st.Volumes[i].Device
		if dev == "" {
			dev = opscore.NA
		}
		debug(opscore.KW("volume", st.Name, vname, true, dev))
	}
	lines = append(lines, imageLines(st)...)
	return append(lines, diskLines(spec, st)...)
}

// imageLines say, with image_update_interval set, which image digest the
// node runs and whether an update waits; as text, since tron's
// dictionary has no keyword for it.
func imageLines(st v1.NodeStatus) []line {
	var lines []line
	img := st.Image
	if img.RegistryError != "" {
		lines = append(lines, line{Code: opscore.Warning, Keywords: []opscore.Keyword{
			text("Cannot read the digest of %s from the registry: %s.", img.Ref, strings.TrimSuffix(img.RegistryError, "."))}})
	}
	if img.LatestDigest == "" {
		return lines
	}
	running := "an image of unknown digest"
	if img.Digest != "" {
		running = shortDigest(img.Digest)
	}
	state := "up to date"
	if img.UpdateWaiting {
		state = "update waiting"
	}
	return append(lines, line{Code: opscore.Info, Keywords: []opscore.Keyword{
		text("Node %s runs %s; %s is %s at the registry (%s).", st.Name, running, img.Ref, shortDigest(img.LatestDigest), state)}})
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
