package manager

import (
	"context"
	"errors"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/actor"
)

// errRelayOnly answers what a relay-only daemon does not do.
var errRelayOnly = errors.New("this fliswarm only relays (started with --relay-only): another system runs the cameras; " +
	"with Kubernetes, `kubectl delete pod -l fliswarm.sdss.org/node=NODE` replaces a camera and `kubectl logs` shows its output")

// reconciler is what the actor converges and reads the nodes through:
// the node controller, or, relay only, the same without converging.
func (m *Manager) reconciler() actor.Reconciler {
	if m.opts.RelayOnly {
		return relayOnly{m.ctl}
	}
	return m.ctl
}

// relayOnly is the node controller with Converge refused: the actor's
// reconnect then fails each node with errRelayOnly.
type relayOnly struct{ actor.Reconciler }

func (r relayOnly) Converge(_ context.Context, nodes []string, _ v1.ConvergeOptions) map[string]error {
	out := make(map[string]error, len(nodes))
	for _, n := range nodes {
		out[n] = errRelayOnly
	}
	return out
}
