package testbed

import (
	"github.com/sdss/fliswarm/pkg/engine"
)

// The kinds of node engines on the bed (TESTBED_TLS_NODES and
// TESTBED_SSH_NODES choose them; see hack/testbed-secure.bash).
const (
	// KindPlain: tcp://IP:2375, no authentication.
	KindPlain = "plain"
	// KindTLS: tcp://IP:2376 with --tlsverify and the bed's certificates.
	KindTLS = "tls"
	// KindSSH: the engine's unix socket, through the node's sshd as root.
	KindSSH = "ssh"
)

// kindOf reads a node's kind from `hack/testbed env` (a bed written
// before there were kinds has only plain nodes).
func kindOf(v string) string {
	if v == "" {
		return KindPlain
	}
	return v
}

// NodesOfKind returns the bed's nodes of one kind.
func (b *Bed) NodesOfKind(kind string) []Node {
	var out []Node
	for _, n := range b.Nodes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// EngineOptions fills base with what it takes to open the node's engine
// at DockerHost as fliswarm does: the client certificate of a TLS node,
// the key and known_hosts of an ssh node.
func (n Node) EngineOptions(base engine.Options) engine.Options {
	switch n.Kind {
	case KindTLS:
		base.TLS = &engine.TLSOptions{CertPath: n.TLSCertPath, Verify: true}
	case KindSSH:
		base.SSH = engine.SSHOptions{IdentityFile: n.SSHIdentity, KnownHosts: n.SSHKnownHosts}
	}
	return base
}

// setCredentials gives each node the bed's TLS and ssh material.
func (b *Bed) setCredentials() {
	for i := range b.Nodes {
		b.Nodes[i].TLSCertPath, b.Nodes[i].SSHIdentity, b.Nodes[i].SSHKnownHosts = b.TLSCertPath, b.SSHIdentity, b.SSHKnownHosts
	}
}
