// Command fliswarm keeps a flicamera container running on every enabled
// node and serves the fliswarm actor. See pkg/cli for the commands.
package main

import (
	"os"

	"github.com/sdss/fliswarm/pkg/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
