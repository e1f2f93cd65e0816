package manager

import (
	"context"
	"errors"
	"fmt"
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
}

// Manager is the daemon.
type Manager struct {
	opts Options
	log  logr.Logger
	ctl  *controllers.NodeController
	act  *actor.Actor
	met  *metrics.Metrics
	web  *web.Server

	mu        sync.Mutex
	loaded    *config.Loaded
	configErr string
	started   time.Time
	warner    securityWarner
	httpAddr  net.Addr

	group *group
}

// New builds the daemon; nothing runs until Start.
func New(opts Options) (*Manager, error) {
	m := &Manager{opts: opts, log: opts.Logger, loaded: opts.Config}
	m.warner = securityWarner{log: opts.Logger}
	m.warner.check(opts.Config.Spec)
	m.met = metrics.New(func() []v1.NodeStatus { return m.ctl.Status() })
	m.ctl = controllers.New(opts.Config.Spec, opts.Config.Revision, controllers.Options{
		Logger:  opts.Logger.WithName("reconciler"),
		Metrics: m.met,
		// A (re)started camera is reconnected at once, not after the
		// device client's backoff.
		OnContainerStarted: func(node string) { m.act.ContainerStarted(node) },
		// A camera in the middle of an exposure is not replaced.
		Busy: func(node string) (bool, string) { return m.act.Busy(node) },
	})
	m.act = actor.New(actor.Options{
		Reconciler:    m.ctl,
		Metrics:       m.met,
		ServerOptions: append(serverOptions(opts.Config.Spec.Actor), opscore.WithObserver(m.met)),
		Logger:        opts.Logger.WithName("actor"),
		Version:       version.Version,
	})
	m.web = web.New(web.Options{
		Status:    m.Status,
		Subscribe: m.ctl.Store().Subscribe,
		Metrics:   m.met.Handler(),
		Logger:    opts.Logger.WithName("http"),
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

// Start binds the actor port and the control socket, then starts every
// component as one group: the first to fail stops the others. It returns
// once the daemon is serving; Wait blocks until every component stopped.
func (m *Manager) Start(ctx context.Context) error {
	m.started = time.Now()
	g, ctx := newGroup(ctx)
	m.group = g
	if err := m.act.Start(ctx); err != nil {
		g.stop(err)
		_ = g.Wait()
		return err
	}
	g.Go(func() error { m.act.Wait(); return nil })
	srv, err := control.Listen(daemon.SocketPath(m.opts.RunDir), m)
	if err != nil {
		g.stop(err)
		_ = g.Wait()
		return err
	}
	g.Go(func() error { return srv.Serve(ctx) })
	if addr := m.opts.Config.Spec.HTTP; addr != "" {
		// Bound before Start returns, so that a port in use fails the
		// start; a failure while serving is logged and leaves the cameras
		// managed.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			g.stop(fmt.Errorf("http %s: %w", addr, err))
			_ = g.Wait()
			return fmt.Errorf("status page and metrics (http: %s): %w", addr, err)
		}
		m.mu.Lock()
		m.httpAddr = l.Addr()
		m.mu.Unlock()
		m.log.Info("serving the status page and metrics", "url", "http://"+l.Addr().String()+"/")
		g.Go(func() error {
			if err := m.web.Serve(ctx, l); err != nil {
				m.log.Error(err, "http server stopped")
			}
			return nil
		})
	}
	g.Go(func() error { return m.ctl.Run(ctx) })
	if m.opts.ConfigPath != "" {
		g.Go(func() error { m.watchConfig(ctx); return nil })
	}
	return nil
}

// Wait blocks until every component has stopped, and returns the error
// that stopped the daemon, if one did.
func (m *Manager) Wait() error { return m.group.Wait() }

// Status implements control.Backend.
func (m *Manager) Status() v1.DaemonStatus {
	m.mu.Lock()
	l, cerr, httpAddr := m.loaded, m.configErr, m.httpAddr
	m.mu.Unlock()
	nodes := m.ctl.Status()
	return v1.DaemonStatus{
		Daemon: v1.DaemonInfo{
			Running: true, Pid: os.Getpid(), Version: version.Version,
			Config: l.Source, Revision: l.Revision, StartedAt: m.started,
			ConfigError: cerr, ActorAddr: addrString(m.act.Addr()),
			HTTPAddr: addrString(httpAddr),
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
	m.warner.check(l.Spec)
	if l.Spec.HTTP != m.loaded.Spec.HTTP {
		m.log.Info("http changed: the status page moves when the daemon restarts", "serving", addrString(m.httpAddr), "configured", l.Spec.HTTP)
	}
	m.loaded = l
	m.ctl.SetSpec(l.Spec, l.Revision)
	m.act.SetSpec(l.Spec)
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
