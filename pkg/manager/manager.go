package manager

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/controllers"
	"github.com/sdss/fliswarm/pkg/actor"
	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/events"
	"github.com/sdss/fliswarm/pkg/metrics"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/pkg/version"
	"github.com/sdss/fliswarm/pkg/web"
)

// Options configure the daemon.
type Options struct {
	// Config is the configuration loaded at start.
	Config *config.Loaded
	// ConfigPath is the file to watch and reload; empty for the embedded
	// default (nothing to watch).
	ConfigPath string
	// Nodes is the --nodes override, kept across reloads.
	Nodes  []string
	RunDir string
	Logger logr.Logger
	// Ready is called once every part has bound its port or socket and
	// runs (the detached start reports success then).
	Ready func()
	// RelayOnly: another system (Kubernetes, from fliswarm export
	// kubernetes) runs the camera containers; the daemon is the actor
	// bridge only. No node controller runs and no engine is contacted;
	// reconnect, reconcile and logs are refused with what to do instead.
	RelayOnly bool
}

// Manager is the daemon: its parts, made in the order they depend on
// each other (each is handed only parts made before it), and run as one
// group by Start.
type Manager struct {
	opts  Options
	log   logr.Logger
	store *controllers.Store
	met   *metrics.Metrics
	ev    *events.Recorder
	cams  *actor.Cameras
	ctl   *controllers.NodeController
	link  *actor.HubLink
	act   *actor.Actor
	web   *web.Server

	mu        sync.Mutex
	loaded    *config.Loaded
	configErr string
	started   time.Time
	warner    securityWarner
}

// New builds the daemon; nothing runs until Start.
func New(opts Options) (*Manager, error) {
	spec, rev := opts.Config.Spec, opts.Config.Revision
	m := &Manager{opts: opts, log: opts.Logger, loaded: opts.Config}
	m.warner = securityWarner{log: opts.Logger}
	m.warner.check(spec)
	// The status store comes first: every other part reads it.
	m.store = controllers.NewStore(spec, rev)
	if opts.RelayOnly {
		m.store.SetRelayOnly()
	}
	m.met = metrics.New(m.store.Status)
	m.ev = events.New(events.Options{Size: spec.EventsPerNode, Count: m.met.CountEvent})
	m.ev.Event("", v1.EventNormal, v1.ReasonConfigAccepted, "revision "+rev+" from "+opts.Config.Source+" in force at start")
	m.cams = actor.NewCameras(actor.CamerasOptions{Store: m.store, Logger: opts.Logger.WithName("device")})
	m.ctl = controllers.New(spec, rev, controllers.Options{
		Logger:  opts.Logger.WithName("reconciler"),
		Metrics: m.met,
		Store:   m.store,
		Events:  m.ev,
		// A (re)started camera is reconnected at once, not after the
		// device client's backoff.
		OnContainerStarted: m.cams.ContainerStarted,
		// A camera in the middle of an exposure is not replaced.
		Busy: m.cams.Busy,
	})
	m.link = actor.NewHubLink(actor.HubLinkOptions{Nodes: m.store, Logger: opts.Logger.WithName("tron")})
	m.act = actor.New(actor.Options{
		Reconciler:    m.reconciler(),
		Cameras:       m.cams,
		Hub:           m.link,
		Subscribe:     m.store.Subscribe,
		Metrics:       m.met,
		Logs:          m,
		ServerOptions: append(serverOptions(spec.Actor), opscore.WithObserver(m.met)),
		Logger:        opts.Logger.WithName("actor"),
		Version:       version.Version,
	})
	m.web = web.New(web.Options{
		Addr:      spec.HTTP,
		Status:    m.Status,
		Subscribe: m.store.Subscribe,
		Events:    m.ev,
		Metrics:   m.met.Handler(),
		Logger:    opts.Logger.WithName("http"),
		Logs:      m,
		Pprof:     os.Getenv("FLISWARM_PPROF") == "1",
	})
	return m, nil
}

// Metrics is the daemon's metrics registry and recorders.
func (m *Manager) Metrics() *metrics.Metrics { return m.met }

// serverOptions are the actor port's settings from the configuration. They
// apply from the start; a change takes a restart of fliswarm.
func serverOptions(a v1.Actor) []opscore.Option {
	nets, _ := a.AllowedNetworks() // validated with the configuration
	return []opscore.Option{
		opscore.WithActorName(a.Name),
		opscore.WithAllowedNetworks(nets),
		opscore.WithMaxUsers(a.MaxUsers),
		opscore.WithMaxLineLength(a.MaxLineLength),
		opscore.WithStallTimeout(a.StallTimeout.D()),
		opscore.WithMaxBacklog(a.MaxBacklog),
	}
}

// Controller is the daemon's node controller.
func (m *Manager) Controller() *controllers.NodeController { return m.ctl }

// Start runs the daemon until ctx ends: the actor (its port bound first),
// the control socket, the status page (when http is set; its port bound
// before anything else starts), the camera clients, the hub connection,
// the node controller and the configuration watch, as one group. A port
// or socket that cannot be bound fails Start at once; otherwise Ready is
// called, the first part to fail stops the others, and Start returns
// once every part has returned, with that failure (nil when ctx ended).
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	m.started = time.Now()
	m.mu.Unlock()
	parts := []Runnable{
		m.act,
		&controlSocket{path: daemon.SocketPath(m.opts.RunDir), backend: m},
	}
	if m.opts.Config.Spec.HTTP != "" {
		parts = append(parts, statusPage{m.web, m.log})
	}
	parts = append(parts, m.cams, m.link)
	if !m.opts.RelayOnly {
		parts = append(parts, RunnableFunc(m.ctl.Run))
	}
	if m.opts.ConfigPath != "" {
		parts = append(parts, RunnableFunc(func(ctx context.Context) error { m.watchConfig(ctx); return nil }))
	}
	return run(ctx, parts, m.opts.Ready)
}

// controlSocket serves the control socket (fliswarm status, reconcile,
// stop) as a Runnable.
type controlSocket struct {
	path    string
	backend control.Backend
	srv     *control.Server
}

func (c *controlSocket) Bind() (err error) {
	c.srv, err = control.Listen(c.path, c.backend)
	return err
}

func (c *controlSocket) Start(ctx context.Context) error { return c.srv.Serve(ctx) }

// statusPage serves the status page and the metrics. A failure while
// serving is logged and leaves the cameras managed.
type statusPage struct {
	srv *web.Server
	log logr.Logger
}

func (p statusPage) Bind() error {
	if err := p.srv.Bind(); err != nil {
		return err
	}
	p.log.Info("serving the status page and metrics", "url", "http://"+p.srv.Addr().String()+"/")
	return nil
}

func (p statusPage) Start(ctx context.Context) error {
	if err := p.srv.Start(ctx); err != nil {
		p.log.Error(err, "http server stopped")
	}
	return nil
}

// Status implements control.Backend.
func (m *Manager) Status() v1.DaemonStatus {
	m.mu.Lock()
	l, cerr, started := m.loaded, m.configErr, m.started
	m.mu.Unlock()
	nodes := m.ctl.Status()
	return v1.DaemonStatus{
		Daemon: v1.DaemonInfo{
			Running: true, Pid: os.Getpid(), Version: version.Version,
			Config: l.Source, Revision: l.Revision, StartedAt: started,
			ConfigError: cerr, ActorAddr: addrString(m.act.Addr()),
			HTTPAddr: addrString(m.web.Addr()),
			Hub:      m.act.HubStatus(context.Background()),
		},
		Nodes: nodes,
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Reconcile implements control.Backend: the nodes must be configured and
// enabled.
func (m *Manager) Reconcile(ctx context.Context, req v1.ReconcileRequest) ([]v1.NodeResult, error) {
	if m.opts.RelayOnly {
		return nil, errRelayOnly
	}
	nodes := req.Nodes
	if len(nodes) == 0 {
		nodes = m.ctl.Enabled()
	}
	if err := m.ctl.CheckNodes(nodes); err != nil {
		return nil, err
	}
	return m.ctl.ConvergeResults(ctx, nodes, v1.ConvergeOptions{Force: req.Force}), nil
}

// reload reads the configuration file again; an invalid file is logged
// and recorded, and the running spec stays.
func (m *Manager) reload() {
	l, err := config.Load(config.Options{Path: m.opts.ConfigPath, Nodes: m.opts.Nodes})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if _, serr := os.Stat(m.opts.ConfigPath); errors.Is(serr, os.ErrNotExist) {
			msg = "configuration file " + m.opts.ConfigPath + " was deleted; running revision " + m.loaded.Revision + " until it is back"
		}
		if msg != m.configErr {
			m.log.Error(err, "configuration change rejected; keeping revision "+m.loaded.Revision)
			m.act.SetConfigError(msg)
			m.ev.Event("", v1.EventWarning, v1.ReasonConfigRejected, "keeping revision "+m.loaded.Revision+": "+msg)
		}
		m.configErr = msg
		return
	}
	if m.configErr != "" {
		m.act.SetConfigError("")
	}
	m.configErr = ""
	if l.Revision == m.loaded.Revision {
		// The registry credentials are outside the revision; pulls read
		// them from the controller's spec.
		if config.CredentialsChanged(l.Spec, m.loaded.Spec) {
			m.log.Info("registry credentials changed")
			m.loaded = l
			m.ctl.SetSpec(l.Spec, l.Revision)
		}
		return
	}
	m.log.Info("configuration changed", "from", m.loaded.Revision, "to", l.Revision)
	m.ev.Event("", v1.EventNormal, v1.ReasonConfigAccepted, "revision "+l.Revision+" in force (was "+m.loaded.Revision+")")
	m.ev.SetSize(l.Spec.EventsPerNode)
	m.warner.check(l.Spec)
	if l.Spec.HTTP != m.loaded.Spec.HTTP {
		m.log.Info("http changed: the status page moves when the daemon restarts", "serving", addrString(m.web.Addr()), "configured", l.Spec.HTTP)
	}
	m.loaded = l
	m.ctl.SetSpec(l.Spec, l.Revision) // the camera clients, the hub link and the actor follow the store
}

// watchConfig reloads on changes to the file (editors often replace it,
// so the directory is watched) and on SIGHUP.
func (m *Manager) watchConfig(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	path, _ := filepath.Abs(m.opts.ConfigPath)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.log.Error(err, "cannot watch the configuration; reload with SIGHUP")
	} else {
		defer w.Close()
		if err := w.Add(filepath.Dir(path)); err != nil {
			m.log.Error(err, "cannot watch the configuration directory; reload with SIGHUP")
		}
	}
	var events chan fsnotify.Event
	var errs chan error
	if w != nil {
		events, errs = w.Events, w.Errors
	}
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			m.reload()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Clean(ev.Name) == path && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename|fsnotify.Remove) != 0 {
				debounce = time.After(300 * time.Millisecond)
			}
		case err, ok := <-errs:
			if ok && !errors.Is(err, context.Canceled) {
				m.log.Error(err, "configuration watch")
			}
		case <-debounce:
			debounce = nil
			m.reload()
		}
	}
}

// Events implements control.Backend: the nodes must be configured and
// enabled.
func (m *Manager) Events(req v1.EventsRequest) ([]v1.Event, *events.Follower, error) {
	if len(req.Nodes) > 0 {
		if err := m.ctl.CheckNodes(req.Nodes); err != nil {
			return nil, nil, err
		}
	}
	f := events.Filter{Nodes: req.Nodes, Since: req.Since}
	if !req.Follow {
		return m.ev.List(f), nil, nil
	}
	past, fl := m.ev.Follow(f)
	return past, fl, nil
}
