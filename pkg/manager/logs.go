package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sdss/fliswarm/pkg/camlog"
	"github.com/sdss/fliswarm/pkg/control"
	"github.com/sdss/fliswarm/pkg/engine"
)

// logsOpenTimeout bounds finding what a logs request shows, before
// anything streams: an operator waits for it.
const logsOpenTimeout = 5 * time.Second

// openLogs picks what req shows on each node through the controller's
// engine connections. Its errors are *control.StatusError: 404 for a node
// not configured or a container (or previous instance) that does not
// exist, 409 for a node not enabled, 503 for an engine that does not
// answer (at once when the controller last saw it down).
func (m *Manager) openLogs(ctx context.Context, nodes []string, req camlog.Request) (*camlog.Streams, error) {
	if m.opts.RelayOnly {
		return nil, &control.StatusError{Code: http.StatusConflict, Err: errRelayOnly}
	}
	spec, _ := m.ctl.Spec()
	enabled := m.ctl.Enabled()
	srcs := make([]camlog.Source, 0, len(nodes))
	for _, n := range nodes {
		if _, ok := spec.Nodes[n]; !ok {
			return nil, &control.StatusError{Code: http.StatusNotFound,
				Err: fmt.Errorf("%s is not configured (configured: %s)", n, strings.Join(spec.NodeNames(), ", "))}
		}
		if !slices.Contains(enabled, n) {
			return nil, &control.StatusError{Code: http.StatusConflict, Err: fmt.Errorf("%s is not enabled", n)}
		}
		if st, ok := m.ctl.NodeStatus(n); ok && !st.ObservedAt.IsZero() && !st.DockerAlive {
			why := st.LastError
			if why == "" {
				why = st.Message
			}
			return nil, &control.StatusError{Code: http.StatusServiceUnavailable,
				Err: fmt.Errorf("%s: the engine at %s is not answering: %s", n, spec.Nodes[n].DockerClient, why)}
		}
		eng, err := m.ctl.NodeEngine(n)
		if err != nil {
			return nil, &control.StatusError{Code: http.StatusServiceUnavailable, Err: err}
		}
		ce, ok := eng.(camlog.Engine)
		if !ok {
			return nil, fmt.Errorf("%s: this engine connection cannot read logs", n)
		}
		srcs = append(srcs, camlog.Source{Node: n, Container: spec.ContainerNameFor(n), Engine: ce})
	}
	octx, cancel := context.WithTimeout(ctx, logsOpenTimeout)
	defer cancel()
	s, err := camlog.Open(octx, srcs, req)
	switch {
	case err == nil:
		return s, nil
	case ctx.Err() == nil && errors.Is(octx.Err(), context.DeadlineExceeded):
		return nil, &control.StatusError{Code: http.StatusServiceUnavailable,
			Err: fmt.Errorf("the engine did not answer within %s: %w", logsOpenTimeout, err)}
	case errors.Is(err, camlog.ErrNoContainer), errors.Is(err, camlog.ErrNoPrevious):
		return nil, &control.StatusError{Code: http.StatusNotFound, Err: err}
	case engine.IsUnreachable(err):
		return nil, &control.StatusError{Code: http.StatusServiceUnavailable, Err: err}
	}
	return nil, err
}

// OpenLogs implements control.LogsBackend.
func (m *Manager) OpenLogs(ctx context.Context, req control.LogsRequest) ([]control.LogRecord, func(context.Context, func(control.LogRecord) error) error, error) {
	s, err := m.openLogs(ctx, req.Nodes, camlog.Request{Tail: req.Tail, Since: req.Since, Follow: req.Follow, Previous: req.Previous})
	if err != nil {
		return nil, nil, err
	}
	var headers []control.LogRecord
	nodes, ins := s.Instances()
	for i, n := range nodes {
		headers = append(headers, control.LogRecord{Node: n, Instance: ins[i].Description})
	}
	run := func(ctx context.Context, send func(control.LogRecord) error) error {
		var sendErr error
		err := s.Run(ctx, func(node string, l engine.LogLine) error {
			return send(control.LogRecord{Node: node, Time: l.Time, Stream: l.Stream, Text: l.Text})
		}, func(node string, err error) {
			if err != nil && sendErr == nil {
				sendErr = send(control.LogRecord{Node: node, Error: err.Error()})
			}
		})
		return cmpErr(err, sendErr)
	}
	return headers, run, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// TailLogs implements the actor's Logs: the last n lines of node's
// camera.
func (m *Manager) TailLogs(ctx context.Context, node string, n int) ([]string, error) {
	s, err := m.openLogs(ctx, []string{node}, camlog.Request{Tail: n})
	if err != nil {
		return nil, err
	}
	var lines []string
	err = s.Run(ctx, func(_ string, l engine.LogLine) error {
		lines = append(lines, l.Text)
		return nil
	}, nil)
	return lines, err
}

// FollowLogs implements the status page's log source: node's camera's
// last tail lines, then each new one, until ctx ends or the camera
// stops.
func (m *Manager) FollowLogs(ctx context.Context, node string, tail int, fn func(t time.Time, line string)) error {
	s, err := m.openLogs(ctx, []string{node}, camlog.Request{Tail: tail, Follow: true})
	if err != nil {
		return err
	}
	return s.Run(ctx, func(_ string, l engine.LogLine) error { fn(l.Time, l.Text); return nil }, nil)
}
