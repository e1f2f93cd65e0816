package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"sigs.k8s.io/yaml"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// Revision is a short stable hash of the effective spec. Secrets (the
// registry password) take no part in it: it is shown in the status, and a
// hash of a password is itself something to keep.
func Revision(s *v1.Swarm) string {
	b, _ := json.Marshal(s) // map keys are sorted by encoding/json
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// Show renders the effective spec as YAML in the flat layout, loadable
// again with -c once the registry password, printed as v1.Redacted, is
// put back.
func Show(s *v1.Swarm) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(b)
}
