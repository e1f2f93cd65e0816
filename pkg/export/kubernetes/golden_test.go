package kubernetes

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sdss/fliswarm/pkg/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenCase is a configuration the export is checked on: the embedded
// default (path ""), the test bed's, or a sample.
type goldenCase struct {
	name, path, observatory string
}

// GoldenCases are every configuration with a golden file: the embedded
// default at both observatories, the test bed's configuration and every
// sample in config/samples.
func goldenCases(t *testing.T) []goldenCase {
	cases := []goldenCase{
		{"default-apo", "", "APO"},
		{"default-lco", "", "LCO"},
		{"testbed", "testdata/testbed.yaml", "APO"},
	}
	samples, err := filepath.Glob("../../../config/samples/*.yaml")
	if err != nil || len(samples) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	for _, s := range samples {
		cases = append(cases, goldenCase{"sample-" + strings.TrimSuffix(filepath.Base(s), ".yaml"), s, "APO"})
	}
	return cases
}

func export(t *testing.T, c goldenCase) []byte {
	t.Helper()
	l, err := config.Load(config.Options{Path: c.path, Observatory: c.observatory})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Build(l.Spec, l.Paths, Options{})
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	b, err := MarshalAll(objs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden compares each configuration's export with its golden file
// (go test -run TestGolden -update rewrites them), checks that a second
// export from a fresh load gives the same bytes, and that every document
// decodes strictly into its k8s.io/api type.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases(t) {
		t.Run(c.name, func(t *testing.T) {
			got := export(t, c)
			if again := export(t, c); !bytes.Equal(got, again) {
				t.Fatal("two exports of the same configuration differ")
			}
			golden := filepath.Join("testdata", "golden", c.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("export differs from %s (run go test -run TestGolden -update and review the diff)\n%s", golden, firstDiff(string(want), string(got)))
			}
			kinds := decodeStrict(t, got)
			if kinds["Namespace"] != 1 || kinds["Deployment"] != 1 || kinds["Service"] != 1 || kinds["ConfigMap"] != 1 || kinds["DaemonSet"] == 0 {
				t.Errorf("kinds exported: %v", kinds)
			}
		})
	}
}

// decodeStrict decodes every document of a stream into its typed object,
// refusing unknown and duplicate fields, and counts the kinds.
func decodeStrict(t *testing.T, stream []byte) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	for i, doc := range strings.Split(string(stream), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch meta.Kind {
		case "Namespace":
			obj = &corev1.Namespace{}
		case "PersistentVolume":
			obj = &corev1.PersistentVolume{}
		case "PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		case "Service":
			obj = &corev1.Service{}
		case "Deployment":
			obj = &appsv1.Deployment{}
		case "DaemonSet":
			obj = &appsv1.DaemonSet{}
		default:
			t.Fatalf("document %d: unexpected kind %q", i, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Errorf("document %d (%s) does not decode strictly: %v", i, meta.Kind, err)
		}
		kinds[meta.Kind]++
	}
	return kinds
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, a, b)
		}
	}
	return ""
}

// TestStrictDecodeRefusesUnknownField: the strict decode above can fail.
func TestStrictDecodeRefusesUnknownField(t *testing.T) {
	var ds appsv1.DaemonSet
	err := yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  updateStrategy:\n    type: OnDelete\n  maxSurge: 0\n"), &ds)
	if err == nil || !strings.Contains(err.Error(), "maxSurge") {
		t.Fatalf("unknown field accepted: %v", err)
	}
}
