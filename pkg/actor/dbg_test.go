package actor

import (
	"context"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
)

func TestDbg(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	busy := h.dial()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := busy.Send(ctx, "talk -n gfa1 expose 600", func(r opscore.Reply) { t.Logf("busy: %s", r.Line) })
	t.Logf("busy: %q %v", r.Line, err)
}
