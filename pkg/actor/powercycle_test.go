package actor

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// powerHub is a Hub that records the power commands, fails the ones
// naming a device in failOn, and holds every command until release is
// closed (when it is not nil).
type powerHub struct {
	failOn  map[string]bool
	release chan struct{}

	mu    sync.Mutex
	calls []string
}

func (p *powerHub) Command(ctx context.Context, target, command string) (HubReply, error) {
	if err := ctx.Err(); err != nil {
		return HubReply{}, err // never sent, as with the real client
	}
	p.mu.Lock()
	p.calls = append(p.calls, target+" "+command)
	p.mu.Unlock()
	if p.release != nil {
		select {
		case <-p.release:
		case <-ctx.Done():
			return HubReply{}, ctx.Err()
		}
	}
	f := strings.Fields(command)
	if p.failOn[command] || p.failOn[f[len(f)-1]] {
		return HubReply{Actor: target, Code: opscore.Failed, Keywords: []opscore.Keyword{opscore.KW("text", "switch stuck")}}, nil
	}
	return HubReply{Actor: target, Code: opscore.Done}, nil
}

func (p *powerHub) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func powerSpec(s *v1.Swarm) {
	s.Power = &v1.Power{Actor: "jaeger", Command: v1.PowerCommand{PowerOn: "ieb switch --on", PowerOff: "ieb switch --off"}}
	for i, n := range nodeNames {
		node := s.Nodes[n]
		node.Power = &v1.NodePower{Device: []string{"nuc1", "nuc2", "nuc3"}[i]}
		s.Nodes[n] = node
	}
}

// TestHardRebootOneFailedPowerOff: one node's power-off fails; the others
// are still powered off, every node is powered on, each outcome is
// reported naming its node, and the command fails naming the node.
func TestHardRebootOneFailedPowerOff(t *testing.T) {
	hub := &powerHub{failOn: map[string]bool{"ieb switch --off nuc2": true}}
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Hub = hub }, spec: powerSpec})
	res := send(t, h.dial(), "reboot --hard")
	if res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, "power cycling of gfa2.") {
		t.Errorf("reboot ended %q", res.final.Line)
	}
	sent := hub.sent()
	slices.Sort(sent[:3])
	slices.Sort(sent[3:])
	want := []string{
		"jaeger ieb switch --off nuc1", "jaeger ieb switch --off nuc2", "jaeger ieb switch --off nuc3",
		"jaeger ieb switch --on nuc1", "jaeger ieb switch --on nuc2", "jaeger ieb switch --on nuc3",
	}
	if !slices.Equal(sent, want) {
		t.Errorf("power commands %q, want %q", sent, want)
	}
	lines := res.lines()
	for _, l := range []string{
		`i text="gfa1: powered off (jaeger ieb switch --off nuc1)."`,
		`i text="fvc: powered off (jaeger ieb switch --off nuc3)."`,
		`w error=gfa2,"power off failed: jaeger ieb switch --off nuc2: text=\"switch stuck\""`,
		`i text="gfa1: powered on (jaeger ieb switch --on nuc1)."`,
		`i text="gfa2: powered on (jaeger ieb switch --on nuc2)."`,
		`i text="fvc: powered on (jaeger ieb switch --on nuc3)."`,
		"i enabledNodes=gfa1,gfa2,fvc", // the status report still comes
	} {
		if !slices.Contains(lines, l) {
			t.Errorf("lacks %s:\n%s", l, strings.Join(lines, "\n"))
		}
	}
}

// TestHardRebootFinishesWhenTheUserLeaves: the user that asked for a hard
// reboot disconnects while the computers are being powered off; they are
// powered on all the same.
func TestHardRebootFinishesWhenTheUserLeaves(t *testing.T) {
	hub := &powerHub{release: make(chan struct{})}
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Hub = hub }, spec: powerSpec})
	c := h.dial()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		_, _ = c.Send(ctx, "reboot --hard -n gfa1,gfa2", nil)
	}()
	waitUntil(t, "power-offs sent", func() bool { return len(hub.sent()) == 2 })
	c.Close()
	waitUntil(t, "the user gone", func() bool { return len(h.actor.srv.Load().Users()) == 0 })
	close(hub.release)
	waitUntil(t, "power-ons sent", func() bool { return len(hub.sent()) == 4 })
	sent := hub.sent()
	slices.Sort(sent[2:])
	if !slices.Equal(sent[2:], []string{"jaeger ieb switch --on nuc1", "jaeger ieb switch --on nuc2"}) {
		t.Errorf("power commands %q", sent)
	}
}

// TestHardRebootThroughTron: the same through the real hub client and a
// stand-in hub on loopback that fails one power-off.
func TestHardRebootThroughTron(t *testing.T) {
	hub := startFakeHub(t, "127.0.0.1:0") // fails commands holding "fail"
	h := newHarness(t, harnessConfig{
		tronAddr: hub.addr(),
		spec: func(s *v1.Swarm) {
			powerSpec(s)
			s.Power.Command.PowerOff = "ieb switch --off --fail" // every power-off fails
		},
	})
	waitUntil(t, "tron connected", func() bool { return len(nubsLines(hub.received())) == 1 })
	res := send(t, h.dial(), "reboot --hard -n gfa1,fvc")
	if res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, "power cycling of gfa1, fvc.") {
		t.Errorf("reboot ended %q", res.final.Line)
	}
	bodies := powerBodies(t, hub.received())
	slices.Sort(bodies)
	want := []string{"ieb switch --off --fail nuc1", "ieb switch --off --fail nuc3", "ieb switch --on nuc1", "ieb switch --on nuc3"}
	if !slices.Equal(bodies, want) {
		t.Errorf("power commands %q, want %q", bodies, want)
	}
}
