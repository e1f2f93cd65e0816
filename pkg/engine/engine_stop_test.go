package engine_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/test/testbed"
)

// TestEngineEventsEngineStops kills a bed node's engine (started again
// when the test ends) and checks that the event stream ends with an error
// and the engine then counts as unreachable. It runs on the test bed
// (FLISWARM_E2E=1, as in make test); an external test package, since the
// bed's helpers import this one.
func TestEngineEventsEngineStops(t *testing.T) {
	bed := testbed.Ensure(t)
	node := bed.Nodes[len(bed.Nodes)-1]
	c, err := engine.New(node.Name, node.DockerHost, node.EngineOptions(engine.Options{Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs, errc := c.Events(ctx)
	// Make sure the stream is up: the subscription reaches the engine
	// some time after Events returns, so probe volumes are made until one's
	// event arrives.
	probes := map[string]bool{}
	removeProbes := func() {
		for p := range probes {
			_ = c.RemoveVolume(context.Background(), p, true)
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	for up := false; !up; {
		select {
		case ev := <-evs:
			up = probes[ev.Name]
		case err := <-errc:
			removeProbes()
			t.Fatalf("stream ended early: %v", err)
		case <-tick.C:
			p := fmt.Sprintf("fliswarm-stop-probe-%d-%d", time.Now().UnixNano(), len(probes))
			probes[p] = true
			if _, err := c.CreateVolume(ctx, p, "", nil, nil); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("no probe event within a minute")
		}
	}

	removeProbes()
	bed.KillEngine(t, node.Name)
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case <-evs:
		case err := <-errc:
			if err == nil || errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), node.Name+": events: ") {
				t.Fatalf("stream end error = %v, want the engine's end", err)
			}
			t.Logf("stream ended: %v", err)
			if err := c.Ping(context.Background()); !engine.IsUnreachable(err) {
				t.Errorf("Ping after the engine stopped: %v, want unreachable", err)
			}
			return
		case <-timeout:
			t.Fatal("event stream still open two minutes after killing the engine")
		}
	}
}
