// Package config holds fliswarm's deployable files: the default
// configuration (embedded in the binary and used when no -c is given),
// samples of both configuration layouts (and the original documentation's
// example), and a service unit. The Go part
// only embeds the default; parsing lives in pkg/config.
package config

import _ "embed"

// Default is the embedded default configuration: the one the original
// fliswarm ships as its internal default and runs at APO and LCO
// (OBSERVATORY picks the section). The original documentation's example
// is samples/documentation.yaml.
//
//go:embed default.yaml
var Default []byte
