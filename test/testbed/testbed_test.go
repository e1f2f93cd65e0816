package testbed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEnv(t *testing.T) {
	full := `export TESTBED_DIR='/var/lib/fliswarm-testbed'
export TESTBED_RUN_DIR='/run/fliswarm-testbed'
export TESTBED_CONFIG='/var/lib/fliswarm-testbed/fliswarm.yaml'
export TESTBED_DATA_DIR='/var/lib/fliswarm-testbed/data'
export TESTBED_REGISTRY='10.213.0.1:5000'
export TESTBED_IMAGE='sdss/flicamera:latest'
export TESTBED_IMAGE_V2='sdss/flicamera:v2'
export TESTBED_IMAGE_REF='10.213.0.1:5000/sdss/flicamera:latest'
export TESTBED_IMAGE_V2_REF='10.213.0.1:5000/sdss/flicamera:v2'
export TESTBED_NODES='gfa1 my-fvc'
export TESTBED_MANAGER_DOCKER_HOST='unix:///run/fliswarm-testbed/manager/docker.sock'
export TESTBED_NODE_GFA1_IP='10.213.0.11'
export TESTBED_NODE_GFA1_DOCKER_HOST='tcp://10.213.0.11:2375'
export TESTBED_NODE_GFA1_DOCKER_SOCK='unix:///run/fliswarm-testbed/gfa1/docker.sock'
export TESTBED_NODE_GFA1_NETNS='fs-gfa1'
export TESTBED_NODE_MY_FVC_IP='10.213.0.12'
export TESTBED_NODE_MY_FVC_DOCKER_HOST='tcp://10.213.0.12:2375'
export TESTBED_NODE_MY_FVC_DOCKER_SOCK='unix:///run/fliswarm-testbed/my-fvc/docker.sock'
export TESTBED_NODE_MY_FVC_NETNS='fs-my-fvc'
`
	want := &Bed{
		Dir:               "/var/lib/fliswarm-testbed",
		RunDir:            "/run/fliswarm-testbed",
		ConfigPath:        "/var/lib/fliswarm-testbed/fliswarm.yaml",
		DataDir:           "/var/lib/fliswarm-testbed/data",
		Registry:          "10.213.0.1:5000",
		Image:             "sdss/flicamera:latest",
		ImageV2:           "sdss/flicamera:v2",
		ImageRef:          "10.213.0.1:5000/sdss/flicamera:latest",
		ImageV2Ref:        "10.213.0.1:5000/sdss/flicamera:v2",
		ManagerDockerHost: "unix:///run/fliswarm-testbed/manager/docker.sock",
		Nodes: []Node{
			{Name: "gfa1", IP: "10.213.0.11", DockerHost: "tcp://10.213.0.11:2375",
				Socket: "unix:///run/fliswarm-testbed/gfa1/docker.sock", Netns: "fs-gfa1", Kind: KindPlain},
			{Name: "my-fvc", IP: "10.213.0.12", DockerHost: "tcp://10.213.0.12:2375",
				Socket: "unix:///run/fliswarm-testbed/my-fvc/docker.sock", Netns: "fs-my-fvc", Kind: KindPlain},
		},
	}

	tests := []struct {
		name    string
		in      string
		want    *Bed
		wantErr string
	}{
		{name: "full", in: full, want: want},
		{name: "blank lines and comments", in: "\n# comment\n" + full + "\n", want: want},
		{name: "missing node key", in: strings.ReplaceAll(full, "export TESTBED_NODE_MY_FVC_NETNS='fs-my-fvc'\n", ""),
			wantErr: "missing TESTBED_NODE_MY_FVC_NETNS"},
		{name: "empty value", in: strings.ReplaceAll(full, "'10.213.0.1:5000'", "''"), wantErr: "missing TESTBED_REGISTRY"},
		{name: "not an export", in: full + "TESTBED_X=1\n", wantErr: "unexpected line"},
		{name: "no value", in: full + "export TESTBED_X\n", wantErr: "unexpected line"},
		{name: "empty", in: "", wantErr: "missing TESTBED_DIR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnv(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseEnv error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEnv: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseEnv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The root is where the bed's script lives, wherever the test runs from.
	if _, err := os.Stat(filepath.Join(root, "hack", "testbed")); err != nil {
		t.Fatalf("RepoRoot() = %q, which holds no hack/testbed: %v", root, err)
	}
}
