// Package config holds fliswarm's deployable files: the default
// configuration (embedded in the binary and used when no -c is given),
// samples of both configuration layouts, and a service unit. The Go part
// only embeds the default; parsing lives in pkg/config.
package config

import _ "embed"

// Default is the embedded default configuration: the example of the
// original documentation, byte for byte.
//
//go:embed default.yaml
var Default []byte
