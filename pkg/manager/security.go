package manager

import (
	"time"

	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/controllers"
	"github.com/sdss/fliswarm/pkg/engine"
)

// EngineOpener opens a node's engine the way the spec returned by spec
// says: TLS material or ssh identity and known_hosts, and the registry
// credentials, read at each pull from the spec of that moment.
//
// The controller's engine cache reopens an engine only when its address
// changes, so an edit of the TLS or ssh settings alone takes effect when
// the engine is next opened (see the README's notes on reloads).
func EngineOpener(spec func() *v1.Swarm, log logr.Logger) func(node, address string) (controllers.Engine, error) {
	auth := func() (string, error) { return engine.RegistryAuthFor(spec()) }
	return func(node, address string) (controllers.Engine, error) {
		c := spec().EngineConnection(node)
		c.Address = address
		return engine.New(node, address, engine.OptionsFor(c, engine.Options{Logger: log, RegistryAuth: auth}))
	}
}

// AnnotateEngineSecurity records in each node's status the security of
// its engine connection (the EngineSecure condition, and the warning of
// an insecure one in Warnings), as of since.
func AnnotateEngineSecurity(spec *v1.Swarm, nodes []v1.NodeStatus, since time.Time) {
	for i := range nodes {
		if _, ok := spec.Nodes[nodes[i].Name]; ok {
			nodes[i].SetEngineSecurity(spec.EngineConnection(nodes[i].Name), since)
		}
	}
}

// securityWarner logs, once per node, that its engine connection is not
// secure (again only if the warning changes, after a configuration edit).
type securityWarner struct {
	log    logr.Logger
	warned map[string]string
}

func (w *securityWarner) check(spec *v1.Swarm) {
	if w.warned == nil {
		w.warned = map[string]string{}
	}
	for _, n := range spec.EnabledNodes {
		secure, warning := spec.EngineSecurity(n)
		if secure || w.warned[n] == warning {
			continue
		}
		w.warned[n] = warning
		w.log.Info("WARNING: insecure engine connection", "node", n, "warning", warning)
	}
}
