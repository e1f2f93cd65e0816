// Package cli is the fliswarm command line: the cobra command tree, its
// flags and exit codes. Each command is a thin layer over pkg/config,
// pkg/daemon, pkg/manager, pkg/export/kubernetes and controllers; nothing
// here touches Docker or a socket directly.
package cli
