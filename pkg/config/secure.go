package config

import (
	"os"
	"path/filepath"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// tls decodes `tls: {cert_path, verify}`, or `tls: false` (a node that
// keeps plain TCP under a global tls).
func (d *decoder) tls(dst **v1.TLS) func(string, any) {
	return func(path string, v any) {
		switch t := v.(type) {
		case nil:
			*dst = nil
			return
		case bool:
			if t {
				d.errs.Add(path, "expected {cert_path: DIR, verify: true} or false, found true")
				return
			}
			*dst = &v1.TLS{Disabled: true}
			return
		}
		out := &v1.TLS{}
		d.object(path, v, map[string]func(string, any){
			"cert_path": d.str(&out.CertPath),
			"verify":    d.boolean(&out.Verify),
			"disabled":  func(p string, v any) { var b *bool; d.boolean(&b)(p, v); out.Disabled = b != nil && *b },
		})
		*dst = out
	}
}

// ssh decodes `ssh: {identity_file, known_hosts}`.
func (d *decoder) ssh(dst **v1.SSH) func(string, any) {
	return func(path string, v any) {
		if v == nil {
			*dst = nil
			return
		}
		out := &v1.SSH{}
		d.object(path, v, map[string]func(string, any){
			"identity_file": d.str(&out.IdentityFile),
			"known_hosts":   d.str(&out.KnownHosts),
		})
		*dst = out
	}
}

// registryAuth decodes `registry_auth: {username, password | password_file}`.
func (d *decoder) registryAuth(dst **v1.RegistryAuth) func(string, any) {
	return func(path string, v any) {
		if v == nil {
			*dst = nil
			return
		}
		out := &v1.RegistryAuth{}
		d.object(path, v, map[string]func(string, any){
			"username": d.str(&out.Username),
			"password": func(p string, v any) {
				// A password of digits only is still a password.
				if s, ok := d.scalarStr(p, v); ok {
					out.Password = v1.Secret(s)
				}
			},
			"password_file": d.str(&out.PasswordFile),
		})
		*dst = out
	}
}

// CheckFiles reports configured files that cannot be read: the TLS
// material of every enabled node with TLS (ca.pem, cert.pem, key.pem in
// its cert_path), explicitly configured ssh identity and known_hosts files,
// and the registry password file. Defaults (~/.ssh/...) are checked when
// an engine is connected, not here.
func CheckFiles(s *v1.Swarm, p v1.Paths) v1.ErrorList {
	var errs v1.ErrorList
	seen := map[string]bool{}
	check := func(path, file string) {
		if file == "" || seen[path+"\x00"+file] {
			return
		}
		seen[path+"\x00"+file] = true
		f, err := v1.ExpandHome(file)
		if err == nil {
			var fh *os.File
			if fh, err = os.Open(f); err == nil {
				fh.Close()
			}
		}
		if err != nil {
			errs.Add(path, "cannot read %s: %v", file, unwrapPath(err))
		}
	}
	for _, name := range s.EnabledNodes {
		n, ok := s.Nodes[name]
		if !ok {
			continue
		}
		c := s.EngineConnection(name)
		node := p.Nodes + "." + name
		if c.TLS {
			path := "tls.cert_path"
			if n.TLS != nil && n.TLS.CertPath != "" {
				path = node + ".tls.cert_path"
			}
			files := []string{"cert.pem", "key.pem"}
			if c.TLSVerify {
				files = append([]string{"ca.pem"}, files...)
			}
			for _, f := range files {
				check(path, filepath.Join(c.TLSCertPath, f))
			}
		}
		if c.Scheme() == "ssh" {
			check(sshPath(s, n, node, "identity_file", func(x *v1.SSH) string { return x.IdentityFile }), c.SSHIdentityFile)
			check(sshPath(s, n, node, "known_hosts", func(x *v1.SSH) string { return x.KnownHosts }), c.SSHKnownHosts)
		}
	}
	if a := s.RegistryAuth; a != nil && a.PasswordFile != "" {
		check("registry_auth.password_file", a.PasswordFile)
	}
	return errs
}

// sshPath is where an ssh setting of a node came from: the node's own
// section or the global one.
func sshPath(s *v1.Swarm, n v1.Node, node, key string, get func(*v1.SSH) string) string {
	if n.SSH != nil && get(n.SSH) != "" {
		return node + ".ssh." + key
	}
	return "ssh." + key
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// CredentialsChanged reports whether the registry credentials differ
// between two loads. They take no part in the revision (see Revision), so
// a reload that changes only them has the same revision and must still be
// taken.
func CredentialsChanged(a, b *v1.Swarm) bool {
	x, y := a.RegistryAuth, b.RegistryAuth
	if x == nil || y == nil {
		return (x == nil) != (y == nil)
	}
	return *x != *y
}
