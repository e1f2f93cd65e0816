package testbed

import (
	"testing"

	"github.com/sdss/fliswarm/pkg/engine"
)

func TestParseEnvSecureNodes(t *testing.T) {
	out := `export TESTBED_DIR='/d'
export TESTBED_RUN_DIR='/r'
export TESTBED_CONFIG='/d/fliswarm.yaml'
export TESTBED_DATA_DIR='/d/data'
export TESTBED_REGISTRY='10.219.0.1:5009'
export TESTBED_IMAGE='sdss/flicamera:latest'
export TESTBED_IMAGE_V2='sdss/flicamera:v2'
export TESTBED_IMAGE_REF='10.219.0.1:5009/sdss/flicamera:latest'
export TESTBED_IMAGE_V2_REF='10.219.0.1:5009/sdss/flicamera:v2'
export TESTBED_NODES='a b c'
export TESTBED_MANAGER_DOCKER_HOST='unix:///r/manager/docker.sock'
export TESTBED_NODE_A_IP='10.219.0.11'
export TESTBED_NODE_A_DOCKER_HOST='tcp://10.219.0.11:2375'
export TESTBED_NODE_A_DOCKER_SOCK='unix:///r/a/docker.sock'
export TESTBED_NODE_A_NETNS='fsbr9-a'
export TESTBED_NODE_A_KIND='plain'
export TESTBED_NODE_B_IP='10.219.0.12'
export TESTBED_NODE_B_DOCKER_HOST='tcp://10.219.0.12:2376'
export TESTBED_NODE_B_DOCKER_SOCK='unix:///r/b/docker.sock'
export TESTBED_NODE_B_NETNS='fsbr9-b'
export TESTBED_NODE_B_KIND='tls'
export TESTBED_NODE_C_IP='10.219.0.13'
export TESTBED_NODE_C_DOCKER_HOST='ssh://root@10.219.0.13/r/c/docker.sock'
export TESTBED_NODE_C_DOCKER_SOCK='unix:///r/c/docker.sock'
export TESTBED_NODE_C_NETNS='fsbr9-c'
export TESTBED_NODE_C_KIND='ssh'
export TESTBED_TLS_NODES='b'
export TESTBED_SSH_NODES='c'
export TESTBED_TLS_CERT_PATH='/d/tls/client'
export TESTBED_SSH_IDENTITY='/d/ssh/id_ed25519'
export TESTBED_SSH_KNOWN_HOSTS='/d/ssh/known_hosts'
`
	b, err := parseEnv(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.NodesOfKind(KindPlain)) != 1 || len(b.NodesOfKind(KindTLS)) != 1 || len(b.NodesOfKind(KindSSH)) != 1 {
		t.Fatalf("kinds: %+v", b.Nodes)
	}
	tls := b.NodesOfKind(KindTLS)[0].EngineOptions(engine.Options{})
	if tls.TLS == nil || tls.TLS.CertPath != "/d/tls/client" || !tls.TLS.Verify {
		t.Errorf("TLS node options %+v", tls)
	}
	ssh := b.NodesOfKind(KindSSH)[0].EngineOptions(engine.Options{})
	if ssh.SSH.IdentityFile != "/d/ssh/id_ed25519" || ssh.SSH.KnownHosts != "/d/ssh/known_hosts" || ssh.TLS != nil {
		t.Errorf("ssh node options %+v", ssh)
	}
	if p := b.NodesOfKind(KindPlain)[0].EngineOptions(engine.Options{}); p.TLS != nil || p.SSH != (engine.SSHOptions{}) {
		t.Errorf("plain node options %+v", p)
	}
}
