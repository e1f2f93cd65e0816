package v1

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
)

// FieldError is one problem found in a configuration, at a path such as
// "nodes.APO.gfa2.docker-client".
type FieldError struct {
	Path    string
	Message string
}

func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// ErrorList is every problem found, reported together.
type ErrorList []FieldError

// Add appends a problem at path.
func (l *ErrorList) Add(path, format string, args ...any) {
	*l = append(*l, FieldError{Path: path, Message: fmt.Sprintf(format, args...)})
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Error lists every problem, one per line, sorted by path.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i] < lines[j] })
	return strings.Join(lines, "\n")
}

// Paths says where the parts of a spec came from in its file, so that
// problems point at the right place in either layout.
type Paths struct {
	// Nodes is the path of the node map, "nodes" or "nodes.APO".
	Nodes string
	// EnabledNodes is "enabled_nodes" or "enabled_nodes.APO".
	EnabledNodes string
}

// DefaultPaths are those of the flat layout.
var DefaultPaths = Paths{Nodes: "nodes", EnabledNodes: "enabled_nodes"}

var validRestartPolicies = map[string]bool{"no": true, "always": true, "unless-stopped": true, "on-failure": true}

// Validate checks a defaulted spec and returns every problem found.
func (s *Swarm) Validate(p Paths) ErrorList {
	var errs ErrorList
	if s.Image == "" {
		errs.Add("image", "is required")
	}
	if s.Registry != "" {
		if strings.ContainsAny(s.Registry, "/ \t") {
			errs.Add("registry", "expected host[:port] or null for Docker Hub, found %q", s.Registry)
		}
	}
	if strings.ContainsAny(s.ContainerName, " /:") {
		errs.Add("container_name", "expected a plain name, found %q", s.ContainerName)
	}
	if s.PingTimeout <= 0 {
		errs.Add("ping_timeout", "must be positive, found %v", s.PingTimeout.D().Seconds())
	}
	if s.Observatory != "APO" && s.Observatory != "LCO" {
		errs.Add("observatory", "expected APO or LCO, found %q", s.Observatory)
	}
	if s.Actor.Port < 0 || s.Actor.Port > 65535 {
		errs.Add("actor.port", "expected a TCP port, found %d", s.Actor.Port)
	}
	if _, err := s.Actor.AllowedNetworks(); err != nil {
		errs.Add("actor.allow", "%v", err)
	}
	if s.Actor.MaxUsers < 0 {
		errs.Add("actor.max_users", "must not be negative, found %d", s.Actor.MaxUsers)
	}
	if s.Actor.StallTimeout < 0 {
		errs.Add("actor.stall_timeout", "must not be negative")
	}
	if s.Actor.MaxBacklog < 0 {
		errs.Add("actor.max_backlog", "must not be negative, found %d", s.Actor.MaxBacklog)
	}
	if s.Actor.MaxLineLength < 0 {
		errs.Add("actor.max_line_length", "must not be negative, found %d", s.Actor.MaxLineLength)
	}
	if s.Actor.TronPort < 0 || s.Actor.TronPort > 65535 {
		errs.Add("actor.tron_port", "expected a TCP port, found %d", s.Actor.TronPort)
	}

	if s.HTTP != "" {
		if err := ValidateListenAddr(s.HTTP); err != nil {
			errs.Add("http", "%v", err)
		}
	}

	seen := map[string]bool{}
	for i, n := range s.EnabledNodes {
		path := fmt.Sprintf("%s[%d]", p.EnabledNodes, i)
		if _, ok := s.Nodes[n]; !ok {
			errs.Add(path, "node %q is enabled but not defined in %s", n, p.Nodes)
		}
		if seen[n] {
			errs.Add(path, "node %q is listed twice", n)
		}
		seen[n] = true
	}

	ports := map[string]string{}
	for _, name := range s.NodeNames() {
		n := s.Nodes[name]
		path := p.Nodes + "." + name
		if strings.ContainsAny(name, " /:,;=\"") || name == "" {
			errs.Add(path, "node name %q may not contain spaces or / : , ; = \"", name)
		}
		if n.Host == "" {
			errs.Add(path+".host", "is required")
		}
		if n.Port <= 0 || n.Port > 65535 {
			errs.Add(path+".port", "expected a TCP port (1-65535), found %d", n.Port)
		}
		if err := ValidateDockerHost(n.DockerClient); err != nil {
			errs.Add(path+".docker-client", "%v", err)
		}
		if h := n.KubernetesHostname; h != "" && !isLabelValue(h) {
			errs.Add(path+".kubernetes_hostname", "expected a node's kubernetes.io/hostname label (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit), found %q", h)
		}
		if n.DockerGID != nil && n.DockerUID == nil {
			errs.Add(path+".docker-gid", "docker-gid needs docker-uid")
		}
		if n.Host != "" && n.Port > 0 {
			key := n.Host + ":" + strconv.Itoa(n.Port)
			if other, dup := ports[key]; dup {
				errs.Add(path+".port", "port %d on host %s is also used by node %s", n.Port, n.Host, other)
			} else {
				ports[key] = name
			}
		}
	}

	for _, name := range s.VolumeNames() {
		v := s.Volumes[name]
		path := "volumes." + name
		if v.Opts["device"] == "" {
			errs.Add(path+".opts.device", "is required: it is where the volume is mounted")
		} else if !strings.HasPrefix(v.MountPath(), "/") {
			errs.Add(path+".opts.device", "expected an absolute path (optionally after a colon), found %q", v.Opts["device"])
		}
	}

	if s.Resources.CPUs < 0 {
		errs.Add("resources.cpus", "must not be negative, found %v", s.Resources.CPUs)
	}
	if _, err := units.RAMInBytes(s.Resources.Memory); err != nil {
		errs.Add("resources.memory", "expected a size such as 6g or 512m, found %q", s.Resources.Memory)
	}
	for i, d := range s.Devices {
		if !strings.HasPrefix(d, "/") {
			errs.Add(fmt.Sprintf("devices[%d]", i), "expected an absolute path, found %q", d)
		}
	}
	if s.PullPolicy != PullAlways && s.PullPolicy != PullIfNotPresent {
		errs.Add("pull_policy", "expected %q or %q, found %q", PullAlways, PullIfNotPresent, s.PullPolicy)
	}
	if !validRestartPolicies[s.RestartPolicy] {
		errs.Add("restart_policy", "expected no, always, unless-stopped or on-failure, found %q", s.RestartPolicy)
	}
	if s.ResyncInterval <= 0 {
		errs.Add("resync_interval", "must be positive")
	}
	if s.EventsPerNode < 0 || s.EventsPerNode > MaxEventsPerNode {
		errs.Add("events_per_node", "must be between 1 and %d, found %d", MaxEventsPerNode, s.EventsPerNode)
	}
	if s.MaxUnavailable < 1 {
		errs.Add("max_unavailable", "must be at least 1, found %d", s.MaxUnavailable)
	}
	if s.ReadyTimeout <= 0 {
		errs.Add("ready_timeout", "must be positive")
	}
	if s.UpdateWait < 0 {
		errs.Add("update_wait", "must not be negative")
	}
	if s.ImageUpdateInterval < 0 {
		errs.Add("image_update_interval", "must not be negative (0 turns image updates off)")
	} else if s.ImageUpdateInterval > 0 && s.ImageUpdateInterval < Seconds(1) {
		errs.Add("image_update_interval", "must be 0 (off) or at least 1 s, found %s", s.ImageUpdateInterval.D())
	}
	if k := s.ImageGC.GCKeep(); k < 0 {
		errs.Add("image_gc.keep", "must be at least 1 (the running image), or 0 to turn image garbage collection off; found %d", k)
	}
	if h := s.ImageGC.GCHighPercent(); h < 0 || h > 100 {
		errs.Add("image_gc.high_percent", "must be a percentage of the disk from 1 to 100, or 0 for no disk check; found %d", h)
	}
	if s.PullStallTimeout <= 0 {
		errs.Add("pull_stall_timeout", "must be positive")
	}
	if s.CommandTimeout < 0 {
		errs.Add("command_timeout", "must not be negative (0: no limit)")
	}
	s.validateSecurity(p, &errs)
	validateEnv(&errs, "env", s.Env)
	for _, name := range s.NodeNames() {
		validateEnv(&errs, p.Nodes+"."+name+".env", s.Nodes[name].Env)
	}
	return errs
}

// isLabelValue reports whether v is a valid, non-empty Kubernetes label
// value.
func isLabelValue(v string) bool {
	if len(v) > 63 || v == "" {
		return false
	}
	for i, c := range v {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || i == len(v)-1 || (c != '-' && c != '_' && c != '.')) {
			return false
		}
	}
	return true
}

func validateEnv(errs *ErrorList, path string, env map[string]string) {
	for k := range env {
		if k == "" || strings.Contains(k, "=") {
			errs.Add(path+"."+k, "is not a valid variable name")
		}
		if k == "ACTOR_NAME" || k == "OBSERVATORY" {
			errs.Add(path+"."+k, "is set by fliswarm itself")
		}
	}
}

// ValidateListenAddr checks an address to listen on: host:port, with an
// empty host for every interface and port 0 for any free port.
func ValidateListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("expected host:port (e.g. 127.0.0.1:19997) or null to turn it off, found %q", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("expected a host name or address, found %q", host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("expected a TCP port in %q", addr)
	}
	return nil
}

// ValidateDockerHost checks a Docker Engine address: tcp://host:port,
// ssh://[user@]host[:port][/socket] or unix:///path.
func ValidateDockerHost(addr string) error {
	if addr == "" {
		return fmt.Errorf("is required (e.g. tcp://host:2375)")
	}
	u, err := url.Parse(addr)
	if err != nil {
		return fmt.Errorf("expected tcp://host:port, ssh://user@host or unix:///path, found %q", addr)
	}
	switch u.Scheme {
	case "ssh":
		return validateSSHAddress(addr)
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return fmt.Errorf("expected tcp://host:port, found %q", addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("expected a port number in %q", addr)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("unexpected path in %q", addr)
		}
	case "unix":
		if u.Path == "" || u.Host != "" {
			return fmt.Errorf("expected unix:///absolute/path, found %q", addr)
		}
	default:
		return fmt.Errorf("expected tcp://host:port, ssh://user@host or unix:///path, found %q (scheme %q is not supported)", addr, u.Scheme)
	}
	return nil
}
