package v1

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Swarm is the desired state of every camera node fliswarm manages.
type Swarm struct {
	// Actor is where fliswarm's own actor listens and where tron is.
	Actor Actor `json:"actor"`
	// Registry is the address (host:port) of the registry images are
	// pulled from. Empty (YAML null) means Docker Hub.
	Registry string `json:"registry"`
	// Image is the flicamera image and tag, e.g. "sdss5/flicamera:latest".
	Image string `json:"image"`
	// ContainerName is the prefix of each container's name; the container
	// of node gfa1 is "<ContainerName>-gfa1". Default "flicamera".
	ContainerName string `json:"container_name"`
	// PingTimeout bounds the ICMP (or TCP) reachability check of a node.
	// Default 0.1 s.
	PingTimeout Duration `json:"ping_timeout"`
	// Observatory is APO or LCO. It selects the per-observatory sections of
	// the configuration and is passed to each container as OBSERVATORY.
	// Default APO.
	Observatory string `json:"observatory"`
	// EnabledNodes are the nodes fliswarm keeps a camera running on, in
	// order. Every name must be a key of Nodes.
	EnabledNodes []string `json:"enabled_nodes"`
	// Nodes are all known node computers, by name.
	Nodes map[string]Node `json:"nodes"`
	// Volumes are created on every enabled node and mounted in the
	// container at the path of their "device" option.
	Volumes map[string]Volume `json:"volumes"`

	// Resources limit each camera container. Default 3.5 CPUs and 6 GiB.
	Resources Resources `json:"resources"`
	// Privileged runs the container in privileged mode, needed to reach the
	// camera hardware. Default true.
	Privileged *bool `json:"privileged"`
	// NetworkMode of the container. Default "host", so the camera actor
	// listens on the node's own address.
	NetworkMode string `json:"network_mode"`
	// Devices are host paths both bind-mounted and mapped as devices.
	// Default ["/dev/bus/usb"], so a camera plugged in later is seen.
	Devices []string `json:"devices"`
	// Env is extra environment for the container, beside ACTOR_NAME and
	// OBSERVATORY, which fliswarm always sets.
	Env map[string]string `json:"env,omitempty"`
	// PullPolicy says when the image is pulled. Default PullAlways, as the
	// original did.
	PullPolicy PullPolicy `json:"pull_policy"`
	// RestartPolicy is Docker's restart policy for the container
	// ("no", "always", "unless-stopped", "on-failure"). Default "no": the
	// reconciler itself restarts a stopped camera at once, without Docker's
	// growing back-off.
	RestartPolicy string `json:"restart_policy"`

	// ResyncInterval is how often every node is reconciled even when no
	// event arrived, while its engine's event stream is down; while it is
	// up, every 4 intervals (at most every 5 minutes, never less often
	// than every interval; an interval under 30 s is kept). Default 30 s.
	ResyncInterval Duration `json:"resync_interval"`
	// MaxUnavailable is how many cameras a rolling change may take down at
	// once. Default 1.
	MaxUnavailable int `json:"max_unavailable"`
	// ReadyTimeout bounds how long a new camera may take to answer (its
	// port accepts and it replies to ping) before its start counts as
	// failed; in a rollout the change then halts on that node. Default
	// 30 s.
	ReadyTimeout Duration `json:"ready_timeout"`
	// UpdateWait is the longest a change that recreates a camera waits
	// for that camera to finish an exposure. Default 600 s.
	UpdateWait Duration `json:"update_wait"`
	// ImageUpdateInterval, when positive, is how often the registry is
	// asked which image the tag names: an image pushed again under the
	// same tag is then rolled out as a configuration change is (pre-pull
	// on every node, wait for an idle camera, max_unavailable, halt on a
	// camera that does not answer). Each node's container is created from
	// the image's digest, so a halted update puts back the image it ran
	// before. Default 0: never asked; the tag is pulled as it is.
	ImageUpdateInterval Duration `json:"image_update_interval,omitempty"`
	// ImageGC removes the camera repository's old images from the nodes
	// after each change of image. Default on: keep 2, no disk threshold.
	ImageGC ImageGC `json:"image_gc,omitzero"`
	// PullStallTimeout ends an image pull that received nothing for this
	// long (a slow link that still makes progress is never cut off).
	// Default 60 s.
	PullStallTimeout Duration `json:"pull_stall_timeout"`
	// CommandTimeout, when positive, ends a camera command that gets no
	// terminal reply in this time. Default 0: no limit, as in the original
	// fliswarm; a command then ends when the camera answers, when its
	// connection drops or the camera stops answering the liveness pings,
	// or when the node is disabled.
	CommandTimeout Duration `json:"command_timeout"`
	// StatusInterval is the period of the automatic broadcast status.
	// Default 300 s; a negative value disables it.
	StatusInterval Duration `json:"status_interval"`
	// EventsPerNode is how many events (fliswarm events) the daemon keeps
	// in memory for each node, the oldest dropped first. 0 (unset): 200,
	// DefaultEventsPerNode (not filled in by SetDefaults, so that the
	// revision of a configuration without it is what it was before).
	EventsPerNode int `json:"events_per_node,omitempty"`
	// HTTP is the address (host:port) of the status page, the health
	// checks and the metrics. A configuration without the key gets
	// DefaultHTTP (loopback only); empty (YAML null) turns them off. Port
	// 0 picks a free port. A change takes effect when the daemon restarts.
	HTTP string `json:"http"`

	// TLS is the TLS material for every tcp:// engine (a node's own tls
	// overrides it). Unset: plain TCP, which fliswarm warns about.
	TLS *TLS `json:"tls,omitempty"`
	// SSH is how ssh:// engines are reached (a node's own ssh overrides
	// it field by field). Unset: the ssh defaults (see SSH).
	SSH *SSH `json:"ssh,omitempty"`
	// RegistryAuth are the credentials for pulling the image. Unset: the
	// registry is used anonymously.
	RegistryAuth *RegistryAuth `json:"registry_auth,omitempty"`

	// Power says how a node is power-cycled through another actor.
	Power *Power `json:"power,omitempty"`
	// RebootCommand is run over ssh for a soft reboot. Default "sudo reboot".
	RebootCommand string `json:"reboot_command"`

	// ImageDigest is not configured: it is the digest (sha256:…) the
	// controller last read from the registry for ImageRef when
	// ImageUpdateInterval is set, "" before that. Containers are created
	// from PinnedImageRef.
	ImageDigest string `json:"-"`
}

// ImageGC is image garbage collection on the nodes, as the kubelet's:
// once a node's camera runs the image the spec asks for and answers,
// images of the camera's repository beyond the Keep newest in use order
// are removed (never another repository's, never one a container uses).
type ImageGC struct {
	// Keep is how many images of the camera's repository each node keeps:
	// the one its camera runs, then the one it ran before (the image a
	// change back would use), then the newest others. 0 turns image
	// garbage collection off; 1 keeps only the running image (going back
	// then pulls again). Default 2.
	Keep *int `json:"keep,omitempty"`
	// HighPercent: when the filesystem of a node's engine data root is
	// fuller than this (used / (used + available), as df reports it in
	// the running camera container, checked every 15 minutes),
	// a warning is logged and the garbage collection runs then too, not
	// only after a change of image. Default 0: off, and nothing is run in
	// the camera's container (the Docker API does not tell a disk's size:
	// the check runs `df` there, with a 5 s limit, never in a paused
	// camera).
	HighPercent *int `json:"high_percent,omitempty"`
}

// GCKeep is how many images a node keeps, 0 when garbage collection is
// off.
func (g ImageGC) GCKeep() int {
	if g.Keep == nil {
		return DefaultImageGCKeep
	}
	return *g.Keep
}

// GCHighPercent is the disk use above which the garbage collection runs
// at the disk check too, 0 for never.
func (g ImageGC) GCHighPercent() int {
	if g.HighPercent == nil {
		return DefaultImageGCHighPercent
	}
	return *g.HighPercent
}

// Actor is the address of fliswarm's actor and of the tron hub.
type Actor struct {
	// Name of the actor. Default "fliswarm".
	Name string `json:"name"`
	// Host and Port the actor listens on. Default 127.0.0.1:19996.
	Host string `json:"host"`
	Port int    `json:"port"`
	// TronHost and TronPort are the hub's address; empty host disables
	// the hub connection.
	TronHost string `json:"tron_host"`
	TronPort int    `json:"tron_port"`
	// LogDir is the directory for log files; empty means no log files.
	LogDir string `json:"log_dir"`
	// Allow lists the networks (CIDR, or single addresses) users may
	// connect from; empty allows every address. tron's address must be in
	// it.
	Allow []string `json:"allow,omitempty"`
	// MaxUsers bounds the users connected at once; 0 means no bound.
	MaxUsers int `json:"max_users,omitempty"`
	// MaxLineLength is the longest command line accepted, in bytes.
	// Default 65536.
	MaxLineLength int `json:"max_line_length,omitempty"`
	// StallTimeout is how long a user with replies waiting may accept no
	// byte before it is disconnected. Default 60 s.
	StallTimeout Duration `json:"stall_timeout,omitempty"`
	// MaxBacklog is how many bytes of replies may wait for one user before
	// it is disconnected. Default 64 MiB.
	MaxBacklog int `json:"max_backlog,omitempty"`
}

// AllowedNetworks parses Allow; a single address is a network of one.
func (a Actor) AllowedNetworks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range a.Allow {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// Node is one node computer with a camera.
type Node struct {
	// Host is the node's hostname or IP, used for ping and the camera's
	// actor port.
	Host string `json:"host"`
	// Port is the camera actor's TCP port on Host.
	Port int `json:"port"`
	// DockerClient is the node's Docker Engine address: tcp://host:port
	// (TLS when tls is configured), ssh://user@host[:port][/socket] (the
	// socket defaults to /var/run/docker.sock) or unix:///path.
	DockerClient string `json:"docker-client"`
	// TLS overrides the global TLS settings for this node; `tls: false`
	// turns TLS off for an engine still on plain TCP.
	TLS *TLS `json:"tls,omitempty"`
	// SSH overrides the global ssh settings for this node.
	SSH *SSH `json:"ssh,omitempty"`
	// Category groups similar cameras ("gfa", "fvc").
	Category string `json:"category"`
	// User is the ssh user for a soft reboot.
	User string `json:"user,omitempty"`
	// DockerUID and DockerGID, when set, run the container as uid[:gid].
	DockerUID *int `json:"docker-uid,omitempty"`
	DockerGID *int `json:"docker-gid,omitempty"`
	// Power names the node for the power actor.
	Power *NodePower `json:"power,omitempty"`
	// Env is this node's own container environment, merged over the
	// global env (a node's value wins): per-camera settings.
	Env map[string]string `json:"env,omitempty"`
	// KubernetesHostname is the node's kubernetes.io/hostname label, which
	// `fliswarm export kubernetes` pins the node's camera to. Default: Host.
	KubernetesHostname string `json:"kubernetes_hostname,omitempty"`
}

// NodePower names a node's power outlet for a hard reboot.
type NodePower struct {
	Device string `json:"device"`
}

// Power is how a hard reboot is done: commands sent to another actor
// through tron.
type Power struct {
	Actor   string       `json:"actor"`
	Command PowerCommand `json:"command"`
}

// PowerCommand holds the power actor's commands; the node's power device
// is appended to each.
type PowerCommand struct {
	PowerOn  string `json:"poweron"`
	PowerOff string `json:"poweroff"`
}

// Volume is a Docker volume created on each node.
type Volume struct {
	// Driver is the volume driver. Default "local".
	Driver string `json:"driver"`
	// Opts are the driver options; "device" is required, and its path
	// without a leading colon is where the volume is mounted.
	Opts map[string]string `json:"opts"`
}

// MountPath is where the volume is mounted in the container: the device
// option without its leading colon (":/data" → "/data").
func (v Volume) MountPath() string {
	d := v.Opts["device"]
	if len(d) > 0 && d[0] == ':' {
		return d[1:]
	}
	return d
}

// Resources are the container's limits.
type Resources struct {
	// CPUs is the CPU quota in CPUs. Default 3.5.
	CPUs float64 `json:"cpus"`
	// Memory is the memory limit, e.g. "6g". Default "6g".
	Memory string `json:"memory"`
}

// PullPolicy says when an image is pulled.
type PullPolicy string

// The pull policies.
const (
	// PullAlways pulls on every reconcile that finds the container missing
	// or changed, and checks the registry for a new image of the same tag
	// at every resync.
	PullAlways PullPolicy = "always"
	// PullIfNotPresent pulls only when the node lacks the image.
	PullIfNotPresent PullPolicy = "if-not-present"
)

// ImageRef is the full reference pulled by the nodes:
// "<registry>/<image>", or just the image for Docker Hub.
func (s *Swarm) ImageRef() string {
	if s.Registry == "" {
		return s.Image
	}
	return s.Registry + "/" + s.Image
}

// ImageRepo is ImageRef without its tag.
func (s *Swarm) ImageRepo() string {
	ref := s.ImageRef()
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// PinnedImageRef is the reference containers are created from:
// "<repo>@<ImageDigest>" when a digest is pinned, else ImageRef.
func (s *Swarm) PinnedImageRef() string {
	if s.ImageDigest == "" {
		return s.ImageRef()
	}
	return s.ImageRepo() + "@" + s.ImageDigest
}

// ContainerNameFor is the container name of node.
func (s *Swarm) ContainerNameFor(node string) string {
	return s.ContainerName + "-" + node
}

// IsEnabled reports whether node is enabled.
func (s *Swarm) IsEnabled(node string) bool {
	for _, n := range s.EnabledNodes {
		if n == node {
			return true
		}
	}
	return false
}

// NodeNames returns every configured node name, sorted.
func (s *Swarm) NodeNames() []string {
	names := make([]string, 0, len(s.Nodes))
	for n := range s.Nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VolumeNames returns the volume names, sorted.
func (s *Swarm) VolumeNames() []string {
	names := make([]string, 0, len(s.Volumes))
	for n := range s.Volumes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Duration is a time.Duration written in configuration files and JSON as
// a number of seconds, like the original's ping_timeout.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Seconds builds a Duration from seconds, rounded to the nearest
// nanosecond (truncating would turn 0.000065 into 64.999 µs).
func Seconds(s float64) Duration { return Duration(math.Round(s * float64(time.Second))) }

// MarshalJSON writes the duration as seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Seconds())
}

// UnmarshalJSON reads a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("expected a number of seconds: %w", err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 || f < -1e9 {
		return fmt.Errorf("expected a number of seconds, got %v", f)
	}
	*d = Seconds(f)
	return nil
}
