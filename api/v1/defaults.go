package v1

import "os"

// Defaults of the original deployment.
const (
	DefaultActorName      = "fliswarm"
	DefaultActorHost      = "127.0.0.1"
	DefaultActorPort      = 19996
	DefaultContainerName  = "flicamera"
	DefaultObservatory    = "APO"
	DefaultNetworkMode    = "host"
	DefaultCPUs           = 3.5
	DefaultMemory         = "6g"
	DefaultVolumeDriver   = "local"
	DefaultRestartPolicy  = "no"
	DefaultRebootCommand  = "sudo reboot"
	DefaultMaxUnavailable = 1
	DefaultDevicePath     = "/dev/bus/usb"
	// DefaultImageGCKeep and DefaultImageGCHighPercent are image_gc's
	// keep and high_percent.
	DefaultImageGCKeep        = 2
	DefaultImageGCHighPercent = 0
	// DefaultHTTP is the address of the status page and metrics when the
	// configuration does not name one. It is not applied by SetDefaults:
	// there an empty HTTP means off.
	DefaultHTTP = "127.0.0.1:19997"
)

// DefaultEventsPerNode is how many events are kept for each node, and
// MaxEventsPerNode the most a configuration may ask.
const (
	DefaultEventsPerNode = 200
	MaxEventsPerNode     = 100000
)

// Default durations.
var (
	DefaultPingTimeout    = Seconds(0.1)
	DefaultResyncInterval = Seconds(30)
	DefaultReadyTimeout   = Seconds(30)
	DefaultUpdateWait     = Seconds(600)
	DefaultPullStall      = Seconds(60)
	DefaultStatusInterval = Seconds(300)
)

// SetDefaults fills every unset field with its default. It is idempotent.
func (s *Swarm) SetDefaults() {
	if s.Actor.Name == "" {
		s.Actor.Name = DefaultActorName
	}
	if s.Actor.Host == "" {
		s.Actor.Host = DefaultActorHost
	}
	if s.Actor.Port == 0 {
		s.Actor.Port = DefaultActorPort
	}
	if s.ContainerName == "" {
		s.ContainerName = DefaultContainerName
	}
	if s.PingTimeout == 0 {
		s.PingTimeout = DefaultPingTimeout
	}
	if s.Observatory == "" {
		s.Observatory = DefaultObservatory
	}
	if s.EnabledNodes == nil {
		s.EnabledNodes = []string{}
	}
	if s.Nodes == nil {
		s.Nodes = map[string]Node{}
	}
	if s.Volumes == nil {
		s.Volumes = map[string]Volume{}
	}
	for name, v := range s.Volumes {
		if v.Driver == "" {
			v.Driver = DefaultVolumeDriver
		}
		if v.Opts == nil {
			v.Opts = map[string]string{}
		}
		s.Volumes[name] = v
	}
	if s.Resources.CPUs == 0 {
		s.Resources.CPUs = DefaultCPUs
	}
	if s.Resources.Memory == "" {
		s.Resources.Memory = DefaultMemory
	}
	if s.Privileged == nil {
		t := true
		s.Privileged = &t
	}
	if s.NetworkMode == "" {
		s.NetworkMode = DefaultNetworkMode
	}
	if s.Devices == nil {
		s.Devices = []string{DefaultDevicePath}
	}
	if s.PullPolicy == "" {
		s.PullPolicy = PullAlways
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = DefaultRestartPolicy
	}
	if s.ResyncInterval == 0 {
		s.ResyncInterval = DefaultResyncInterval
	}
	if s.MaxUnavailable == 0 {
		s.MaxUnavailable = DefaultMaxUnavailable
	}
	if s.ReadyTimeout == 0 {
		s.ReadyTimeout = DefaultReadyTimeout
	}
	if s.UpdateWait == 0 {
		s.UpdateWait = DefaultUpdateWait
	}
	if s.PullStallTimeout == 0 {
		s.PullStallTimeout = DefaultPullStall
	}
	if s.StatusInterval == 0 {
		s.StatusInterval = DefaultStatusInterval
	}
	if s.TLS != nil && !s.TLS.Disabled && s.TLS.Verify == nil {
		t := true
		s.TLS.Verify = &t
	}
	// ImageGC's unset fields stay nil (GCKeep and GCHighPercent read
	// them with their defaults), so that a configuration without image_gc
	// compares equal to one that never had it.
	if s.RebootCommand == "" {
		s.RebootCommand = DefaultRebootCommand
	}
}

// ObservatoryFromEnv returns $OBSERVATORY and whether it was set.
func ObservatoryFromEnv() (string, bool) {
	v, ok := os.LookupEnv("OBSERVATORY")
	return v, ok && v != ""
}
