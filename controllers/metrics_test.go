package controllers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

type fakeMetrics struct {
	mu         sync.Mutex
	reconciles []string
	actions    []string
}

func (m *fakeMetrics) ObserveReconcile(node string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := node + " ok"
	if err != nil {
		r = node + " error"
	}
	if d < 0 {
		r += " negative"
	}
	m.reconciles = append(m.reconciles, r)
}

func (m *fakeMetrics) CountAction(kind, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.actions = append(m.actions, kind+" "+outcome)
}

type scriptedReconciler struct{ errs map[string]error }

func (r scriptedReconciler) Reconcile(_ context.Context, key string) (Result, error) {
	return Result{}, r.errs[key]
}

// The workers report every reconcile, with its error, to Metrics.
func TestControllerReportsReconciles(t *testing.T) {
	q := NewQueue(NewItemBackoff(time.Hour, time.Hour), nil)
	m := &fakeMetrics{}
	c := &Controller{Queue: q, Reconciler: scriptedReconciler{errs: map[string]error{"gfa2": errors.New("down")}},
		Workers: 1, Log: logr.Discard(), Metrics: m}
	q.Add("gfa1")
	q.Add("gfa2")
	ctx := context.Background()
	c.processNext(ctx)
	c.processNext(ctx)
	want := []string{"gfa1 ok", "gfa2 error"}
	if len(m.reconciles) != 2 || m.reconciles[0] != want[0] || m.reconciles[1] != want[1] {
		t.Errorf("reconciles = %q, want %q", m.reconciles, want)
	}
	q.ShutDown()
}

// A die event's restart is counted as a start-container that went well,
// and every reconcile is reported.
func TestReconcilerCountsActions(t *testing.T) {
	m := &fakeMetrics{}
	spec := testSwarm("gfa1")
	h := newHarness(t, spec, "r1", func(o *Options) { o.Metrics = m })
	h.start()
	h.probed()
	h.requireReady("gfa1")
	count := func(action string) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		n := 0
		for _, a := range m.actions {
			if a == action {
				n++
			}
		}
		return n
	}
	if count("create-container ok") != 1 || count("pull-image ok") != 1 {
		t.Errorf("actions after the first converge: %q", m.actions)
	}
	h.eng("gfa1").Kill(spec.ContainerNameFor("gfa1"), 137)
	h.settle()
	h.probed()
	h.requireReady("gfa1")
	if count("start-container ok") != 1 {
		t.Errorf("actions after a crash: %q; want one start-container ok", m.actions)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reconciles) == 0 || !strings.HasPrefix(m.reconciles[0], "gfa1 ") {
		t.Errorf("reconciles = %q", m.reconciles)
	}
}
