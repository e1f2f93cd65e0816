package v1

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file holds how fliswarm reaches the engines securely (TLS, ssh) and
// authenticates to the registry, and the warning given for plain TCP.

// TLS is a node engine's TLS material, in Docker's own DOCKER_CERT_PATH
// layout. Set globally (`tls:`), it applies to every node whose engine is
// tcp://; a node's own `tls:` overrides it field by field, and `tls: false`
// on a node turns it off there (an engine still on plain TCP).
type TLS struct {
	// CertPath is a directory holding ca.pem (the CA that signed the
	// engine's certificate), cert.pem and key.pem (fliswarm's client
	// certificate and key), as `docker --tlsverify` reads them from
	// DOCKER_CERT_PATH. An absolute path, or one under "~/".
	CertPath string `json:"cert_path,omitempty"`
	// Verify checks the engine's certificate against ca.pem and the
	// address's host name. Default true; false still presents the client
	// certificate but lets anyone impersonate the engine.
	Verify *bool `json:"verify,omitempty"`
	// Disabled (written `tls: false` on a node) turns the global TLS off
	// for that node.
	Disabled bool `json:"disabled,omitempty"`
}

// SSH is how an ssh://user@host engine is reached: fliswarm logs in with
// a key (an identity file, or the ssh agent at $SSH_AUTH_SOCK) and checks
// the host key against a known_hosts file. Set globally (`ssh:`) and/or
// per node, field by field.
type SSH struct {
	// IdentityFile is the private key used to log in. Default: each of
	// ~/.ssh/id_ed25519 and ~/.ssh/id_rsa that exists, and the agent's keys.
	IdentityFile string `json:"identity_file,omitempty"`
	// KnownHosts holds the engines' host keys. Default ~/.ssh/known_hosts.
	// A host missing from it, or with another key, is refused.
	KnownHosts string `json:"known_hosts,omitempty"`
}

// RegistryAuth are the credentials the engines use to pull the image.
// The password is never logged or shown.
type RegistryAuth struct {
	Username string `json:"username"`
	// Password, or PasswordFile: a file holding it (read at each pull, a
	// trailing newline removed). Exactly one of them.
	Password     Secret `json:"password,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
}

// Redacted is what a Secret shows instead of its value.
const Redacted = "(redacted)"

// Secret is a string that is never shown: formatting it or encoding it as
// JSON or YAML gives Redacted. Reveal returns the value.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString hides the value from %#v too.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalJSON hides the value (and so do `config show`, the status and the
// structured log, which all encode through JSON).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText hides the value from encoders that use text.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// EngineConnection is how fliswarm reaches one node's engine: its address
// with the global and the node's own TLS and ssh settings resolved. It is
// comparable: an open engine whose connection changed must be reopened.
type EngineConnection struct {
	// Address is the node's docker-client.
	Address string
	// TLS is set for a tcp:// engine with TLS; CertPath and Verify are
	// then the resolved settings.
	TLS         bool
	TLSCertPath string
	TLSVerify   bool
	// SSHIdentityFile and SSHKnownHosts are the resolved ssh settings of
	// an ssh:// engine ("" for the defaults).
	SSHIdentityFile string
	SSHKnownHosts   string
}

// Scheme is the address's scheme: tcp, unix or ssh ("" when malformed).
func (c EngineConnection) Scheme() string {
	scheme, _, ok := strings.Cut(c.Address, "://")
	if !ok {
		return ""
	}
	return scheme
}

// EngineConnection resolves how node's engine is reached. An unknown node
// gives just an empty address.
func (s *Swarm) EngineConnection(node string) EngineConnection {
	n, ok := s.Nodes[node]
	if !ok {
		return EngineConnection{}
	}
	c := EngineConnection{Address: n.DockerClient}
	switch c.Scheme() {
	case "tcp":
		t := mergeTLS(s.TLS, n.TLS)
		if t != nil && !t.Disabled && t.CertPath != "" {
			c.TLS, c.TLSCertPath, c.TLSVerify = true, t.CertPath, t.Verify == nil || *t.Verify
		}
	case "ssh":
		var g, o SSH
		if s.SSH != nil {
			g = *s.SSH
		}
		if n.SSH != nil {
			o = *n.SSH
		}
		c.SSHIdentityFile, c.SSHKnownHosts = firstOf(o.IdentityFile, g.IdentityFile), firstOf(o.KnownHosts, g.KnownHosts)
	}
	return c
}

// mergeTLS is the node's TLS settings over the global ones.
func mergeTLS(global, node *TLS) *TLS {
	switch {
	case node == nil:
		return global
	case node.Disabled:
		return node
	case global == nil:
		return node
	}
	m := *global
	if node.CertPath != "" {
		m.CertPath = node.CertPath
	}
	if node.Verify != nil {
		m.Verify = node.Verify
	}
	return &m
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// EngineSecurity says whether node's engine connection keeps the engine to
// fliswarm, and if not, the warning to give (once per node, in the log and
// in the node's status): a plain tcp:// engine gives root on the node to
// anyone who can reach its port. TLS, ssh and local unix sockets are
// secure; TLS without verifying the engine's certificate is warned about.
func (s *Swarm) EngineSecurity(node string) (secure bool, warning string) {
	return s.EngineConnection(node).Security(node)
}

// Security is EngineSecurity for a resolved connection.
func (c EngineConnection) Security(node string) (secure bool, warning string) {
	switch c.Scheme() {
	case "tcp":
		if !c.TLS {
			return false, "plain TCP gives root on " + node + " to anyone on the network (" + c.Address +
				"); use TLS (tls: {cert_path: ...}) or ssh://"
		}
		if !c.TLSVerify {
			return false, "TLS without verifying the engine's certificate (tls.verify: false): anyone on the network can impersonate the engine of " + node
		}
	}
	return true, ""
}

// Condition and reasons of the engine connection's security.
const (
	// ConditionEngineSecure: the engine is reached over TLS, ssh or a
	// local socket. False (reason PlainTCP or TLSNotVerified) carries the
	// warning.
	ConditionEngineSecure = "EngineSecure"
	ReasonPlainTCP        = "PlainTCP"
	ReasonTLSNotVerified  = "TLSNotVerified"
)

// SetEngineSecurity records the engine connection's security in the
// status: the EngineSecure condition and, when insecure, the warning in
// Warnings (once).
func (st *NodeStatus) SetEngineSecurity(c EngineConnection, now time.Time) {
	secure, warning := c.Security(st.Name)
	reason, msg := "Secure", "engine reached over "+c.Scheme()
	if c.TLS {
		msg = "engine reached over TLS"
	}
	if !secure {
		reason, msg = ReasonPlainTCP, warning
		if c.TLS {
			reason = ReasonTLSNotVerified
		}
	}
	st.SetCondition(ConditionEngineSecure, secure, reason, msg, now)
	if warning != "" {
		for _, w := range st.Warnings {
			if w == warning {
				return
			}
		}
		st.Warnings = append(st.Warnings, warning)
	}
}

// validateSecurity checks the TLS, ssh and registry credential settings.
func (s *Swarm) validateSecurity(p Paths, errs *ErrorList) {
	if s.TLS != nil {
		if s.TLS.Disabled {
			errs.Add("tls", "false is only for a node (to turn the global TLS off there)")
		}
		validateTLS("tls", s.TLS, errs)
	}
	if s.SSH != nil {
		validateSSH("ssh", s.SSH, errs)
	}
	for _, name := range s.NodeNames() {
		n := s.Nodes[name]
		path := p.Nodes + "." + name
		scheme, _, _ := strings.Cut(n.DockerClient, "://")
		if n.TLS != nil {
			if scheme != "tcp" {
				errs.Add(path+".tls", "TLS applies to a tcp:// engine, but docker-client is %q", n.DockerClient)
			} else if !n.TLS.Disabled {
				validateTLS(path+".tls", n.TLS, errs)
				if n.TLS.CertPath == "" && (s.TLS == nil || s.TLS.CertPath == "") {
					errs.Add(path+".tls.cert_path", "is required (no global tls.cert_path either)")
				}
			}
		}
		if n.SSH != nil {
			if scheme != "ssh" {
				errs.Add(path+".ssh", "ssh settings apply to an ssh:// engine, but docker-client is %q", n.DockerClient)
			}
			validateSSH(path+".ssh", n.SSH, errs)
		}
	}
	if a := s.RegistryAuth; a != nil {
		if a.Username == "" {
			errs.Add("registry_auth.username", "is required")
		}
		switch {
		case a.Password == "" && a.PasswordFile == "":
			errs.Add("registry_auth", "needs password or password_file")
		case a.Password != "" && a.PasswordFile != "":
			errs.Add("registry_auth", "has both password and password_file; keep one")
		case a.Password == Redacted:
			errs.Add("registry_auth.password", "is the placeholder `config show` prints; write the real password (or use password_file)")
		case a.PasswordFile != "" && !isFilePath(a.PasswordFile):
			errs.Add("registry_auth.password_file", "expected an absolute path (or ~/...), found %q", a.PasswordFile)
		}
	}
}

func validateTLS(path string, t *TLS, errs *ErrorList) {
	if t.Disabled {
		return
	}
	if path == "tls" && t.CertPath == "" {
		errs.Add(path+".cert_path", "is required: a directory with ca.pem, cert.pem and key.pem")
	}
	if t.CertPath != "" && !isFilePath(t.CertPath) {
		errs.Add(path+".cert_path", "expected an absolute path (or ~/...), found %q", t.CertPath)
	}
}

func validateSSH(path string, s *SSH, errs *ErrorList) {
	if s.IdentityFile != "" && !isFilePath(s.IdentityFile) {
		errs.Add(path+".identity_file", "expected an absolute path (or ~/...), found %q", s.IdentityFile)
	}
	if s.KnownHosts != "" && !isFilePath(s.KnownHosts) {
		errs.Add(path+".known_hosts", "expected an absolute path (or ~/...), found %q", s.KnownHosts)
	}
}

func isFilePath(p string) bool { return strings.HasPrefix(p, "/") || strings.HasPrefix(p, "~/") }

// validateSSHAddress checks ssh://[user@]host[:port][/socket/path].
func validateSSHAddress(addr string) error {
	u, err := url.Parse(addr)
	if err == nil {
		if _, hasPass := u.User.Password(); hasPass {
			return fmt.Errorf("a password in %q is not supported: use a key (ssh.identity_file or the ssh agent)", u.Redacted())
		}
	}
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("expected ssh://user@host[:port][/path/to/docker.sock], found %q", addr)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("expected a port number in %q", addr)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("unexpected query or fragment in %q", addr)
	}
	return nil
}

// ExpandHome replaces a leading "~/" with the user's home directory.
func ExpandHome(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", p, err)
	}
	return filepath.Join(home, rest), nil
}
