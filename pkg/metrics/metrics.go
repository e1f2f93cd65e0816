// Package metrics is fliswarm's Prometheus registry: one per daemon (never
// the global one), holding the Go runtime and process collectors, the
// per-node gauges computed at scrape time from the status store, and the
// counters and histograms the controller and the actor feed.
//
// The controller reports through controllers.Metrics (ObserveReconcile,
// CountAction) and controllers.ImageGCMetrics (ImageRemoved); the actor through CommandDone, LineRelayed, UserDropped
// and SetUsers. Every method is safe for concurrent use, and a nil
// *Metrics records nothing.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Namespace prefixes every fliswarm metric.
const Namespace = "fliswarm"

// ReconcileBuckets are the bounds, in seconds, of the reconcile duration
// histogram: from a converged node (milliseconds) to a slow pull
// (minutes).
var ReconcileBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// Metrics is one daemon's registry and the recorders fed by its parts.
type Metrics struct {
	reg       *prometheus.Registry
	reconcile *prometheus.HistogramVec
	actions   *prometheus.CounterVec
	users     prometheus.Gauge
	commands  *prometheus.CounterVec
	relayed   prometheus.Counter
	dropped   prometheus.Counter
	events    *prometheus.CounterVec
	images    imageMetrics
}

// New returns a registry whose node metrics are read from status at each
// scrape.
func New(status func() []v1.NodeStatus) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.reconcile = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "reconcile_duration_seconds",
		Help:    "Time taken by each reconcile of a node, by node and result (ok, error).",
		Buckets: ReconcileBuckets,
	}, []string{"node", "result"})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "actions_total",
		Help: "Actions the reconciler ran, by kind (pull-image, start-container, ...) and outcome (ok, error).",
	}, []string{"kind", "outcome"})
	m.users = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Subsystem: "actor", Name: "users",
		Help: "Clients connected to the actor port now.",
	})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "actor", Name: "commands_total",
		Help: "Actor commands finished, by verb (status, talk, ...) and outcome (done, failed).",
	}, []string{"verb", "outcome"})
	m.relayed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "actor", Name: "relayed_lines_total",
		Help: "Camera reply lines relayed to the actor's users.",
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "actor", Name: "dropped_users_total",
		Help: "Actor users disconnected because they did not read their replies.",
	})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "events_total",
		Help: "Events recorded (fliswarm events), by node (empty: fliswarm itself), type (Normal, Warning) and reason.",
	}, []string{"node", "type", "reason"})
	m.images = newImageMetrics()
	m.reg.MustRegister(m.events,
		m.images.removed, m.images.freed, newDiskCollector(status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reconcile, m.actions, m.users, m.commands, m.relayed, m.dropped,
		newNodeCollector(status),
	)
	return m
}

// Registry is the daemon's registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when asked).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// ObserveReconcile implements controllers.Metrics.
func (m *Metrics) ObserveReconcile(node string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.reconcile.WithLabelValues(node, outcome(err)).Observe(d.Seconds())
}

// CountAction implements controllers.Metrics.
func (m *Metrics) CountAction(kind, outcome string) {
	if m == nil {
		return
	}
	m.actions.WithLabelValues(kind, outcome).Inc()
}

// CommandDone counts an actor command that ended: its verb and outcome
// ("done" for a ':' reply, "failed" for 'f').
func (m *Metrics) CommandDone(verb, outcome string) {
	if m == nil {
		return
	}
	m.commands.WithLabelValues(verb, outcome).Inc()
}

// LinesRelayed counts camera reply lines relayed to the actor's users.
func (m *Metrics) LinesRelayed(n int) {
	if m == nil {
		return
	}
	m.relayed.Add(float64(n))
}

// UserDropped counts an actor user disconnected for not reading.
func (m *Metrics) UserDropped() {
	if m == nil {
		return
	}
	m.dropped.Inc()
}

// UsersChanged records how many users are connected to the actor now.
func (m *Metrics) UsersChanged(n int) {
	if m == nil {
		return
	}
	m.users.Set(float64(n))
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// CountEvent counts one event recorded (pkg/events).
func (m *Metrics) CountEvent(node, typ, reason string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(node, typ, reason).Inc()
}
