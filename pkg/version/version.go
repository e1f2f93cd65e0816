// Package version holds fliswarm's version, set at build time with
// -ldflags "-X github.com/sdss/fliswarm/pkg/version.Version=...".
package version

// Version is fliswarm's version.
var Version = "0.6.0-dev"
