package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Labels put on everything fliswarm creates.
const (
	LabelManaged  = "org.sdss.fliswarm.managed"
	LabelNode     = "org.sdss.fliswarm.node"
	LabelSpecHash = "org.sdss.fliswarm.spec-hash"
	// LabelSpec holds the rendered Summary as JSON, so the reconciler can
	// say which fields of a running container differ from the spec.
	LabelSpec = "org.sdss.fliswarm.spec"
)

// CPUPeriod is the CFS period, in µs, that CPU quotas are counted in.
const CPUPeriod = 100000

// Summary is everything of a container that fliswarm decides, in a form
// that diffs readably. Its hash identifies the rendered spec.
type Summary struct {
	Image       string   `json:"image"`
	Env         []string `json:"env"`
	User        string   `json:"user,omitempty"`
	Privileged  bool     `json:"privileged"`
	NetworkMode string   `json:"networkMode"`
	Mounts      []string `json:"mounts"`
	Devices     []string `json:"devices"`
	// CPUQuota is the CFS quota in µs per CPUPeriod: 3.5 CPUs is
	// 350000 of 100000. A quota, unlike NanoCPUs, is accepted by engines on
	// hosts with fewer CPUs than the limit (a 2-core NUC with the default).
	CPUQuota      int64  `json:"cpuQuota"`
	MemoryBytes   int64  `json:"memoryBytes"`
	RestartPolicy string `json:"restartPolicy"`
}

// Hash is the stable hash of the summary.
func (s Summary) Hash() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Container is a rendered container.
type Container struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Summary    Summary
	Hash       string
}

// ForNode renders the container of node.
func ForNode(s *v1.Swarm, node string) (Container, error) {
	n, ok := s.Nodes[node]
	if !ok {
		return Container{}, fmt.Errorf("render: node %q is not configured", node)
	}
	mem, err := units.RAMInBytes(s.Resources.Memory)
	if err != nil {
		return Container{}, fmt.Errorf("render: resources.memory: %w", err)
	}
	sum := Summary{
		Image:         s.ImageRef(),
		Env:           env(s, node),
		User:          user(n),
		Privileged:    s.Privileged == nil || *s.Privileged,
		NetworkMode:   s.NetworkMode,
		CPUQuota:      int64(math.Round(s.Resources.CPUs * CPUPeriod)),
		MemoryBytes:   mem,
		RestartPolicy: s.RestartPolicy,
		Mounts:        []string{},
		Devices:       []string{},
	}

	var mounts []mount.Mount
	for _, name := range s.VolumeNames() {
		target := s.Volumes[name].MountPath()
		mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: name, Target: target})
		sum.Mounts = append(sum.Mounts, "volume:"+name+":"+target)
	}
	var devices []container.DeviceMapping
	for _, d := range s.Devices {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: d, Target: d})
		sum.Mounts = append(sum.Mounts, "bind:"+d+":"+d)
		devices = append(devices, container.DeviceMapping{PathOnHost: d, PathInContainer: d, CgroupPermissions: "rwm"})
		sum.Devices = append(sum.Devices, d+":"+d+":rwm")
	}
	hash := sum.Hash()
	specJSON, _ := json.Marshal(sum)

	// The container is created from the pinned digest when there is one
	// (image_update_interval); the summary, and so the hash, keep the tag:
	// which image a container runs is told by its image ID, so pinning the
	// digest the node already runs changes nothing.
	cfg := &container.Config{
		Image: s.PinnedImageRef(),
		Env:   sum.Env,
		User:  sum.User,
		Labels: map[string]string{
			LabelManaged:  "true",
			LabelNode:     node,
			LabelSpecHash: hash,
			LabelSpec:     string(specJSON),
		},
	}
	host := &container.HostConfig{
		Privileged:    sum.Privileged,
		NetworkMode:   container.NetworkMode(sum.NetworkMode),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(sum.RestartPolicy)},
		Mounts:        mounts,
		Resources: container.Resources{
			CPUPeriod: CPUPeriod,
			CPUQuota:  sum.CPUQuota,
			Memory:    sum.MemoryBytes,
			Devices:   devices,
		},
	}
	return Container{Name: s.ContainerNameFor(node), Config: cfg, HostConfig: host, Summary: sum, Hash: hash}, nil
}

// env is ACTOR_NAME and OBSERVATORY, then the extra variables sorted: the
// global ones with the node's own merged over them.
func env(s *v1.Swarm, node string) []string {
	out := []string{"ACTOR_NAME=" + node, "OBSERVATORY=" + s.Observatory}
	merged := map[string]string{}
	for k, v := range s.Env {
		merged[k] = v
	}
	for k, v := range s.Nodes[node].Env {
		merged[k] = v
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+merged[k])
	}
	return out
}

func user(n v1.Node) string {
	if n.DockerUID == nil {
		return ""
	}
	u := strconv.Itoa(*n.DockerUID)
	if n.DockerGID != nil {
		u += ":" + strconv.Itoa(*n.DockerGID)
	}
	return u
}

// SummaryOf reads back the summary stored on a container's labels; ok is
// false when the container carries none (not created by this fliswarm).
func SummaryOf(labels map[string]string) (Summary, bool) {
	raw, ok := labels[LabelSpec]
	if !ok {
		return Summary{}, false
	}
	var s Summary
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Summary{}, false
	}
	return s, true
}

// Volume is a rendered volume.
type Volume struct {
	Name   string
	Driver string
	Opts   map[string]string
	Labels map[string]string
}

// Volumes renders every volume of the spec, sorted by name.
func Volumes(s *v1.Swarm) []Volume {
	var out []Volume
	for _, name := range s.VolumeNames() {
		v := s.Volumes[name]
		opts := make(map[string]string, len(v.Opts))
		for k, val := range v.Opts {
			opts[k] = val
		}
		out = append(out, Volume{
			Name:   name,
			Driver: v.Driver,
			Opts:   opts,
			Labels: map[string]string{LabelManaged: "true"},
		})
	}
	return out
}
