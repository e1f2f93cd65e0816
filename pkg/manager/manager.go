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

	"github.com/sdss/fliswarm/controllers"
	"github.com/sdss/fliswarm/pkg/actor"
	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/daemon"
	"github.com/sdss/fliswarm/pkg/version"
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
	rec  *controllers.Reconciler
	act  *actor.Actor

	mu        sync.Mutex
	loaded    *config.Loaded
	configErr string
	started   time.Time

	wg   sync.WaitGroup
	errs chan error
}

// New builds the daemon; nothing runs until Start.
func New(opts Options) (*Manager, error) {
	m := &Manager{opts: opts, log: opts.Logger, loaded: opts.Config, errs: make(chan error, 4)}
	m.rec = controllers.New(opts.Config.Spec, opts.Config.Revision, controllers.Options{
		Logger: opts.Logger.WithName("reconciler"),
		// A (re)started camera is reconnected at once, not after the
		// device client's backoff.
		OnContainerStarted: func(node string) { m.act.ContainerStarted(node) },
	})
	m.act = actor.New(actor.Options{
		Reconciler: m.rec,
		Logger:     opts.Logger.WithName("actor"),
		Version:    version.Version,
	})
	return m, nil
}

// Reconciler is the daemon's reconciler.
func (m *Manager) Reconciler() *controllers.Reconciler { return m.rec }

// Start binds the control socket and starts every loop. It returns once
// the daemon is serving; Wait blocks until ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	m.started = time.Now()
	// The actor port first: if it cannot be bound, start fails before
	// anything else runs.
	if err := m.act.Start(ctx); err != nil {
		return err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.act.Wait()
	}()
	sock := daemon.SocketPath(m.opts.RunDir)
	ready := make(chan error, 1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		err := control.Serve(ctx, sock, m)
		if err != nil {
			select {
			case ready <- err:
			default:
				m.errs <- err
			}
		}
	}()
	// Serve reports a bind failure at once; give it a moment.
	select {
	case err := <-ready:
		return err
	case <-time.After(100 * time.Millisecond):
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		_ = m.rec.Run(ctx)
	}()
	if m.opts.ConfigPath != "" {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.watchConfig(ctx)
		}()
	}
	return nil
}

// Wait blocks until the daemon has stopped.
func (m *Manager) Wait() error {
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case err := <-m.errs:
		return err
	}
}

// Status implements control.Backend.
func (m *Manager) Status() control.Status {
	m.mu.Lock()
	l, cerr := m.loaded, m.configErr
	m.mu.Unlock()
	return control.Status{
		Daemon: control.DaemonInfo{
			Running: true, Pid: os.Getpid(), Version: version.Version,
			Config: l.Source, Revision: l.Revision, StartedAt: m.started,
			ConfigError: cerr, ActorAddr: addrString(m.act.Addr()),
		},
		Nodes: m.rec.Status(),
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Reconcile implements control.Backend.
func (m *Manager) Reconcile(ctx context.Context, req control.ReconcileRequest) []controllers.NodeResult {
	nodes := req.Nodes
	if len(nodes) == 0 {
		nodes = m.rec.Enabled()
	}
	return m.rec.ConvergeResults(ctx, nodes, req.Force)
}

// reload reads the configuration file again; an invalid file is logged
// and recorded, and the running spec stays.
func (m *Manager) reload() {
	l, err := config.Load(config.Options{Path: m.opts.ConfigPath, Nodes: m.opts.Nodes})
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.configErr = err.Error()
		m.log.Error(err, "configuration change rejected; keeping revision "+m.loaded.Revision)
		return
	}
	m.configErr = ""
	if l.Revision == m.loaded.Revision {
		return
	}
	m.log.Info("configuration changed", "from", m.loaded.Revision, "to", l.Revision)
	m.loaded = l
	m.rec.SetSpec(l.Spec, l.Revision)
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
			if filepath.Clean(ev.Name) == path && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
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
