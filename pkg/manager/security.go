package manager

import (
	"github.com/go-logr/logr"

	v1 "github.com/sdss/fliswarm/api/v1"
)

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
