package render

import (
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// goldenSpec is a reference configuration, as an observatory's would be,
// with every default filled in by SetDefaults. Do not edit it: the test
// below pins what it renders to.
func goldenSpec() *v1.Swarm {
	uid, gid := 2005, 3005
	s := &v1.Swarm{
		Actor:        v1.Actor{TronHost: "sdss-hub", TronPort: 6093},
		Registry:     "sdss-hub:5000",
		Image:        "sdss5/flicamera:latest",
		EnabledNodes: []string{"gfa1", "fvc"},
		Nodes: map[string]v1.Node{
			"gfa1": {Host: "sdss-gfa1", Port: 19995, DockerClient: "tcp://sdss-gfa1:2375", Category: "gfa",
				DockerUID: &uid, DockerGID: &gid},
			"fvc": {Host: "sdss-fvc", Port: 19995, DockerClient: "tcp://sdss-fvc:2375", Category: "fvc"},
		},
		Volumes: map[string]v1.Volume{
			"data": {Opts: map[string]string{"type": "nfs", "o": "nfsvers=4,addr=sdss-hub,rw", "device": ":/data"}},
		},
		Env: map[string]string{"LOG_LEVEL": "debug"},
	}
	s.SetDefaults()
	return s
}

// TestSpecHashIsStable pins the spec hash of the reference spec.
//
// The hash is put on every camera container (LabelSpecHash) and compared
// with the running container's at each reconcile: if an upgrade of
// fliswarm renders the same configuration to a different hash (a new
// Summary field, a changed default, another JSON encoding, a reordered
// env or mount list), every camera of the observatory is recreated at the
// upgrade, in the middle of the night if need be. If this test fails,
// that is what the change does: make it only on purpose, say so in the
// release notes, and only then update the hashes here.
func TestSpecHashIsStable(t *testing.T) {
	want := map[string]string{
		"gfa1": "fc851c5120bd5445",
		"fvc":  "fc86a2278f385e14",
	}
	for node, hash := range want {
		c, err := ForNode(goldenSpec(), node)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash != hash {
			t.Errorf("%s: spec hash %s, want %s: this change restarts every camera at upgrade", node, c.Hash, hash)
		}
		if c.Config.Labels[LabelSpecHash] != c.Hash {
			t.Errorf("%s: label %s = %q, want the hash", node, LabelSpecHash, c.Config.Labels[LabelSpecHash])
		}
	}
}
