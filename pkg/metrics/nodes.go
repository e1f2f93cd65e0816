package metrics

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Phases are every value of NodeStatus.Phase, each exported as a series
// of fliswarm_node_phase (1 for the node's phase, 0 for the others), so
// that an alert can say `fliswarm_node_phase{phase="Ready"} == 0`.
var Phases = []string{
	v1.PhaseReady, v1.PhaseDisabled, v1.PhaseNotObserved, v1.PhaseUnreachable, v1.PhaseEngineDown,
	v1.PhaseRolloutHalted, v1.PhaseCrashLoopBackOff, v1.PhaseImagePullFailed, v1.PhaseNoContainer,
	v1.PhaseContainerNotRunning, v1.PhasePaused, v1.PhaseStarting, v1.PhaseUpdatePending,
	v1.PhaseCameraNotConnected,
}

// RolloutStates are the states of fliswarm_node_rollout_state.
var RolloutStates = []string{v1.RolloutPending, v1.RolloutUpdating, v1.RolloutHalted, v1.RolloutHeld}

// nodeCollector computes the per-node series from the status at scrape
// time, so they are never stale and a node removed from the
// configuration disappears.
type nodeCollector struct {
	status func() []v1.NodeStatus

	enabled, reachable, engine, running, camera, ready *prometheus.Desc
	restarts, crashLoop, backoff, phase, rollout       *prometheus.Desc
}

func newNodeCollector(status func() []v1.NodeStatus) *nodeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "node", name), help, append([]string{"node"}, labels...), nil)
	}
	return &nodeCollector{
		status:    status,
		enabled:   d("enabled", "1 when fliswarm manages the node now."),
		reachable: d("reachable", "1 when the node answers ping."),
		engine:    d("engine_alive", "1 when the node's Docker Engine answers."),
		running:   d("container_running", "1 when the node's camera container runs with the current spec."),
		camera:    d("camera_connected", "1 when fliswarm is connected to the node's camera actor."),
		ready:     d("ready", "1 when the node is ready: it pings, its engine answers, its camera runs and is connected."),
		restarts:  d("restarts_total", "Camera restarts fliswarm itself made on the node since the daemon started."),
		crashLoop: d("crashloop_backoff", "1 while the node's camera keeps stopping and its restarts are backed off."),
		backoff:   d("crashloop_backoff_seconds", "The wait before the next start of a camera in a crash loop (0 when none)."),
		phase:     d("phase", "1 for the node's phase (Ready or the first reason it is not), 0 for the others.", "phase"),
		rollout:   d("rollout_state", "1 for the node's state in a rollout under way (pending, updating, halted, held).", "state"),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.enabled, c.reachable, c.engine, c.running, c.camera, c.ready,
		c.restarts, c.crashLoop, c.backoff, c.phase, c.rollout} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.status == nil {
		return
	}
	for _, st := range c.status() {
		n := st.Name
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{n}, labels...)...)
		}
		gauge(c.enabled, b(st.Enabled))
		gauge(c.reachable, b(st.Reachable))
		gauge(c.engine, b(st.DockerAlive))
		gauge(c.running, b(st.ContainerRunning()))
		gauge(c.camera, b(st.DeviceConnected))
		gauge(c.ready, b(st.Ready()))
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(st.Restarts), n)
		looping := st.CrashLoop != nil && (st.Container == nil || st.Container.State != "running")
		gauge(c.crashLoop, b(looping))
		wait := 0.0
		if looping {
			wait = st.CrashLoop.Backoff.D().Seconds()
		}
		gauge(c.backoff, wait)
		for _, p := range Phases {
			gauge(c.phase, b(st.Phase == p), p)
		}
		if st.Phase != "" && !slices.Contains(Phases, st.Phase) {
			gauge(c.phase, 1, st.Phase) // a phase added later
		}
		for _, s := range RolloutStates {
			gauge(c.rollout, b(st.Rollout != nil && st.Rollout.State == s), s)
		}
	}
}

func b(v bool) float64 {
	if v {
		return 1
	}
	return 0
}
