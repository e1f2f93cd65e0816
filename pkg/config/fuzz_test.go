package config

import (
	"strings"
	"testing"

	"github.com/sdss/fliswarm/config"
)

// FuzzParse feeds arbitrary documents to Parse: it must never panic, and
// any configuration it accepts must render with Show and load back to the
// same spec revision without help from the environment.
func FuzzParse(f *testing.F) {
	f.Add(config.Default, "", "")
	f.Add(config.Default, "APO", "gfa1,fvc")
	f.Add([]byte(flatFile), "LCO", "")
	f.Add([]byte(perObsFile), "APO", "")
	f.Add([]byte(perObsFile), "LCO", "gfa1")
	f.Add([]byte(perObsFile), "", "-")
	f.Add([]byte("image: x\nenabled_nodes: []\nnodes: {}\n"), "", "")
	f.Add([]byte("image: x\nenabled_nodes: [a]\nnodes: {a: {host: h, port: 1, docker-client: \"tcp://h:1\"}}\nping_timeout: 0.000065\n"), "", "")
	f.Add([]byte("image: x\nobservatory: lco\nenabled_nodes: {LCO: []}\nnodes: {LCO: {}}\nenv: {A: 1e3, B: true}\n"), "", "")
	f.Add([]byte("a: [b\n"), "APO", "")
	f.Add([]byte("- a\n"), "APO", "")
	f.Fuzz(func(t *testing.T, data []byte, obs, nodes string) {
		var override []string
		switch nodes {
		case "":
		case "-":
			override = []string{}
		default:
			override = strings.Split(nodes, ",")
		}
		l, err := Parse(data, obs, override)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejected with an empty message")
			}
			return
		}
		out, err := Show(l.Spec)
		if err != nil {
			t.Fatalf("Show of an accepted spec: %v", err)
		}
		back, err := Parse(out, "", nil)
		if err != nil {
			t.Fatalf("Show output does not load: %v\n%s", err, out)
		}
		if back.Revision != l.Revision {
			t.Fatalf("revision %s became %s after Show:\n%s", l.Revision, back.Revision, out)
		}
	})
}
