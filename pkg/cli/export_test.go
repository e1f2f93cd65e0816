package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdss/fliswarm/pkg/cli"
)

const exportConfig = `
image: sdss/flicamera:latest
enabled_nodes: [gfa1, fvc]
nodes:
  gfa1: {host: sdss-gfa1, port: 19995, docker-client: "tcp://sdss-gfa1:2375"}
  fvc: {host: sdss-fvc, port: 19995, docker-client: "tcp://sdss-fvc:2375"}
`

// TestExportKubernetesDirectory: -o writes one file per object, the same
// objects as the stream on stdout; a second export with a node disabled
// removes that node's file and leaves files it did not write.
func TestExportKubernetesDirectory(t *testing.T) {
	cfg := writeFile(t, exportConfig)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mine.yaml"), []byte("kind: Secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stream, errOut := run(t, "-c", cfg, "export", "kubernetes")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "-c", cfg, "export", "kubernetes", "-o", dir); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	var joined strings.Builder
	for _, f := range files {
		if filepath.Base(f) == "mine.yaml" {
			continue
		}
		b, _ := os.ReadFile(f)
		_, doc, _ := strings.Cut(string(b), "\n") // the header line
		joined.WriteString("---\n" + doc)
	}
	if joined.String() != stream {
		t.Errorf("the files differ from the stream:\nfiles:\n%s\nstream:\n%s", joined.String(), stream)
	}
	if _, err := os.Stat(filepath.Join(dir, "60-daemonset-flicamera-fvc.yaml")); err != nil {
		t.Fatal(err)
	}

	if code, _, errOut := run(t, "-c", cfg, "--nodes", "gfa1", "export", "kubernetes", "-o", dir); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "60-daemonset-flicamera-fvc.yaml")); !os.IsNotExist(err) {
		t.Errorf("the disabled node's DaemonSet is still there: %v", err)
	}
	for _, keep := range []string{"mine.yaml", "60-daemonset-flicamera-gfa1.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, keep)); err != nil {
			t.Errorf("%s: %v", keep, err)
		}
	}
}

// TestExportKubernetesRefuses: a setting Kubernetes cannot express ends the
// export with the configuration exit code, every problem and its path, and
// nothing on stdout.
func TestExportKubernetesRefuses(t *testing.T) {
	cfg := writeFile(t, exportConfig+"network_mode: bridge\nimage_update_interval: 60\n")
	code, out, errOut := run(t, "-c", cfg, "export", "kubernetes")
	if code != cli.ExitConfig || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"network_mode: refused", "image_update_interval: refused"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, errOut := run(t, "-c", writeFile(t, exportConfig), "export", "kubernetes", "--update-strategy", "fast"); code != cli.ExitConfig || !strings.Contains(errOut, "--update-strategy: ") {
		t.Errorf("bad strategy: exit %d, %s", code, errOut)
	}
}
