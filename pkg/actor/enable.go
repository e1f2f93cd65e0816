package actor

import (
	"context"
	"slices"

	"github.com/sdss/fliswarm/pkg/opscore"
)

func (a *Actor) disable(_ context.Context, cmd *opscore.Command) { a.setEnabled(cmd, false) }
func (a *Actor) enable(_ context.Context, cmd *opscore.Command)  { a.setEnabled(cmd, true) }

// setEnabled enables or disables nodes at run time, warning "Cannot find
// node X." for a name that is not configured, then reports enabledNodes.
// `disable --all` disables every enabled node; `enable --all` enables
// the spec's enabled_nodes and every node enabled by name since the start,
// which is what the original's node list held.
func (a *Actor) setEnabled(cmd *opscore.Command, on bool) {
	fs, ok := a.parse(cmd)
	if !ok {
		return
	}
	all, _ := fs.GetBool("all")
	var names []string
	for _, arg := range fs.Args() {
		names = append(names, splitList(arg)...)
	}
	spec := a.currentSpec()
	if all {
		if on {
			names = slices.Clone(spec.EnabledNodes)
			a.mu.Lock()
			for n := range a.runtimeEnabled {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			a.mu.Unlock()
		} else {
			names = a.rec.Enabled()
		}
	}
	for _, n := range names {
		if !a.rec.SetEnabled(n, on) {
			cmd.Write(opscore.Warning, text("Cannot find node %s.", n))
			continue
		}
		if on {
			a.mu.Lock()
			a.runtimeEnabled[n] = true
			a.mu.Unlock()
		}
	}
	writeLines(cmd, []line{enabledNodesLine(a.enabled(spec))})
	cmd.Finish()
}
