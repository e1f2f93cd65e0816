package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sdss/fliswarm/pkg/config"
	"github.com/sdss/fliswarm/pkg/export/kubernetes"
)

// exportHeader starts every file `export kubernetes -o` writes; a file in
// the directory that starts with it and is no longer exported is removed.
const exportHeader = "# Written by fliswarm export kubernetes; edit the fliswarm configuration and export again.\n"

func newExportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the configuration in another system's terms",
	}
	var (
		dir  string
		opts kubernetes.Options
	)
	kube := &cobra.Command{
		Use:   "kubernetes",
		Short: "Write the Kubernetes objects that run the same cameras (YAML on stdout, or one file per object with -o)",
		Long: `Write the Kubernetes objects that run the configuration's cameras under a
cluster: a Namespace that admits privileged pods, one DaemonSet per enabled
node pinned to it, the volumes, and the actor bridge (Deployment, Service,
ConfigMap). A setting Kubernetes cannot express ends the export with every
such problem and its configuration path; nothing is dropped silently.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := g.load()
			if err != nil {
				return err
			}
			objs, err := kubernetes.Build(l.Spec, l.Paths, opts)
			if err != nil {
				return withCode(ExitConfig, &config.Error{Source: l.Source + " (cannot be exported to Kubernetes)", Err: err})
			}
			if dir == "" {
				b, err := kubernetes.MarshalAll(objs)
				if err != nil {
					return withCode(ExitFailure, err)
				}
				_, err = g.stdout.Write(b)
				return err
			}
			if err := writeExport(dir, objs); err != nil {
				return withCode(ExitFailure, err)
			}
			fmt.Fprintf(g.stderr, "wrote %d objects to %s\n", len(objs), dir)
			return nil
		},
	}
	f := kube.Flags()
	f.StringVarP(&dir, "output", "o", "", "directory to write one file per object to (default: one YAML stream on stdout)")
	f.StringVar(&opts.Namespace, "namespace", kubernetes.DefaultNamespace, "namespace of the exported objects")
	f.StringVar(&opts.UpdateStrategy, "update-strategy", kubernetes.OnDelete,
		`how a changed DaemonSet replaces its camera: "ondelete" (when the pod is deleted: pick an idle camera, one node at a time) or "rolling" (at once, maxSurge 0)`)
	f.StringVar(&opts.ActorImage, "actor-image", "", `image of the actor bridge (default "<registry>/`+kubernetes.DefaultActorImage+`")`)
	cmd.AddCommand(kube)
	return cmd
}

// writeExport writes one file per object into dir and removes the files
// an earlier export wrote there that are no longer exported.
func writeExport(dir string, objs []kubernetes.Object) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, o := range objs {
		b, err := kubernetes.Marshal(o)
		if err != nil {
			return err
		}
		name := o.FileName()
		keep[name] = true
		if err := os.WriteFile(filepath.Join(dir, name), append([]byte(exportHeader), b...), 0o644); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || keep[e.Name()] || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if b, err := os.ReadFile(p); err == nil && bytes.HasPrefix(b, []byte(exportHeader)) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}
