package engine

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/api/types/registry"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// TLSOptions are a TLS engine's settings, as `docker --tlsverify` takes
// them from DOCKER_CERT_PATH.
type TLSOptions struct {
	// CertPath is a directory holding ca.pem, cert.pem and key.pem ("~/"
	// is the home directory).
	CertPath string
	// Verify checks the engine's certificate against ca.pem (and only
	// it) and the address's host name. Without it the client certificate
	// is still presented.
	Verify bool
}

// clientTLS loads the client side of TLS with Docker's own helper.
func clientTLS(o TLSOptions) (*tls.Config, error) {
	dir, err := v1.ExpandHome(o.CertPath)
	if err != nil {
		return nil, err
	}
	opts := tlsconfig.Options{
		CertFile:           filepath.Join(dir, "cert.pem"),
		KeyFile:            filepath.Join(dir, "key.pem"),
		InsecureSkipVerify: !o.Verify,
		ExclusiveRootPools: true,
	}
	if o.Verify {
		opts.CAFile = filepath.Join(dir, "ca.pem")
	}
	cfg, err := tlsconfig.Client(opts)
	if err != nil {
		return nil, fmt.Errorf("TLS material in %s: %w", o.CertPath, err)
	}
	return cfg, nil
}

// OptionsFor fills base with how to reach an engine as the configuration
// resolved it (TLS material, ssh identity and known_hosts).
func OptionsFor(c v1.EngineConnection, base Options) Options {
	if c.TLS {
		base.TLS = &TLSOptions{CertPath: c.TLSCertPath, Verify: c.TLSVerify}
	}
	base.SSH = SSHOptions{IdentityFile: c.SSHIdentityFile, KnownHosts: c.SSHKnownHosts}
	return base
}

// EncodeRegistryAuth encodes registry credentials as the engine's
// X-Registry-Auth header: base64url of the JSON auth config.
func EncodeRegistryAuth(username, password, server string) (string, error) {
	b, err := json.Marshal(registry.AuthConfig{Username: username, Password: password, ServerAddress: server})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// RegistryAuthFor returns the encoded registry credentials of spec ("" when
// none are configured), reading the password file when there is one (at
// each call, so a changed file is used at the next pull). Errors never
// contain the password.
func RegistryAuthFor(spec *v1.Swarm) (string, error) {
	a := spec.RegistryAuth
	if a == nil {
		return "", nil
	}
	pw := a.Password.Reveal()
	if a.PasswordFile != "" {
		var err error
		if pw, err = readSecretFile(a.PasswordFile); err != nil {
			return "", fmt.Errorf("registry password: %w", err)
		}
	}
	return EncodeRegistryAuth(a.Username, pw, spec.Registry)
}

// readSecretFile reads a one-line secret, without its trailing newline.
func readSecretFile(path string) (string, error) {
	p, err := v1.ExpandHome(path)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
