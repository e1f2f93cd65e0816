package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// certDir makes a DOCKER_CERT_PATH-style directory (the files need only
// exist for loading).
func certDir(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const secureFlat = `
image: sdss5/flicamera:latest
registry: hub:5000
registry_auth: {username: sdss, password: 123456}
tls: {cert_path: %CERTS%}
ssh: {known_hosts: %KH%}
enabled_nodes: [gfa1, gfa2, fvc]
nodes:
  gfa1: {host: gfa1, port: 19995, docker-client: "tcp://gfa1:2376"}
  gfa2: {host: gfa2, port: 19995, docker-client: "tcp://gfa2:2375", tls: false}
  fvc:  {host: fvc, port: 19995, docker-client: "ssh://root@fvc", ssh: {identity_file: %ID%}}
`

func secureDoc(t *testing.T) (doc, certs, kh, id string) {
	certs = certDir(t, "ca.pem", "cert.pem", "key.pem")
	dir := certDir(t, "known_hosts", "id")
	kh, id = filepath.Join(dir, "known_hosts"), filepath.Join(dir, "id")
	doc = strings.NewReplacer("%CERTS%", certs, "%KH%", kh, "%ID%", id).Replace(secureFlat)
	return doc, certs, kh, id
}

func TestLoadSecureSettingsFlat(t *testing.T) {
	doc, certs, kh, id := secureDoc(t)
	l, err := Load(Options{Path: writeFile(t, doc), Observatory: "APO"})
	if err != nil {
		t.Fatal(err)
	}
	s := l.Spec
	want := map[string]v1.EngineConnection{
		"gfa1": {Address: "tcp://gfa1:2376", TLS: true, TLSCertPath: certs, TLSVerify: true},
		"gfa2": {Address: "tcp://gfa2:2375"},
		"fvc":  {Address: "ssh://root@fvc", SSHIdentityFile: id, SSHKnownHosts: kh},
	}
	for node, w := range want {
		if diff := cmp.Diff(w, s.EngineConnection(node)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", node, diff)
		}
	}
	if s.RegistryAuth == nil || s.RegistryAuth.Username != "sdss" || s.RegistryAuth.Password.Reveal() != "123456" {
		t.Errorf("registry_auth = %#v", s.RegistryAuth)
	}
}

func TestLoadSecureSettingsPerObservatory(t *testing.T) {
	certs := certDir(t, "ca.pem", "cert.pem", "key.pem")
	doc := `
image: sdss5/flicamera:latest
enabled_nodes: {APO: [gfa1], LCO: [gfa1]}
nodes:
  APO:
    gfa1: {host: gfa1, port: 19995, docker-client: "tcp://gfa1:2376", tls: {cert_path: ` + certs + `, verify: false}}
  LCO:
    gfa1: {host: gfa1, port: 19995, docker-client: "ssh://sdss@gfa1:2222/run/docker.sock", ssh: {known_hosts: /nonexistent/kh}}
`
	l, err := Load(Options{Path: writeFile(t, doc), Observatory: "APO"})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Spec.EngineConnection("gfa1"); !got.TLS || got.TLSVerify || got.TLSCertPath != certs {
		t.Errorf("APO gfa1 = %+v", got)
	}
	// LCO's known_hosts does not exist: reported at its path.
	_, err = Load(Options{Path: writeFile(t, doc), Observatory: "LCO"})
	if diff := cmp.Diff([]string{"nodes.LCO.gfa1.ssh.known_hosts"}, problemPaths(t, err)); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

func TestSecureSettingsProblems(t *testing.T) {
	doc := `
image: x
registry_auth: {username: 5, password_file: relative, token: x}
tls: {cert_path: [a], verify: "yes"}
ssh: {identity_file: id}
enabled_nodes: [a, b]
nodes:
  a: {host: a, port: 1, docker-client: "unix:///s", tls: true, ssh: {port: 22}}
  b: {host: b, port: 1, docker-client: "ssh://u:pw@b"}
`
	_, err := Parse([]byte(doc), "APO", nil)
	want := []string{
		"nodes.a.ssh", "nodes.a.ssh.port", "nodes.a.tls", "nodes.b.docker-client",
		"registry_auth.password_file", "registry_auth.token", "registry_auth.username",
		"ssh.identity_file", "tls.cert_path", "tls.verify",
	}
	if diff := cmp.Diff(want, problemPaths(t, err)); diff != "" {
		t.Errorf("paths (-want +got):\n%s\n%v", diff, err)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Errorf("the ssh password is repeated in %v", err)
	}
}

func TestCheckFilesReportsMissingTLSMaterial(t *testing.T) {
	certs := certDir(t, "ca.pem", "cert.pem") // no key.pem
	doc := `
image: x
tls: {cert_path: ` + certs + `}
registry_auth: {username: u, password_file: /nonexistent/pw}
enabled_nodes: [a]
nodes:
  a: {host: a, port: 1, docker-client: "tcp://a:2376"}
  b: {host: b, port: 1, docker-client: "tcp://b:2376", tls: {cert_path: /nonexistent}}
`
	_, err := Load(Options{Path: writeFile(t, doc), Observatory: "APO"})
	if diff := cmp.Diff([]string{"registry_auth.password_file", "tls.cert_path"}, problemPaths(t, err)); diff != "" {
		t.Fatalf("paths (-want +got):\n%s\n%v", diff, err)
	}
	if !strings.Contains(err.Error(), "key.pem") {
		t.Errorf("error does not name key.pem: %v", err)
	}
}

func TestShowRedactsThePassword(t *testing.T) {
	doc, _, _, _ := secureDoc(t)
	doc = strings.Replace(doc, "password: 123456", "password: s3cr3t-pw", 1)
	l, err := Parse([]byte(doc), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Show(l.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "s3cr3t-pw") || !strings.Contains(string(out), v1.Redacted) {
		t.Fatalf("config show:\n%s", out)
	}
	// Everything else loads back as it was; the placeholder is refused.
	back, err := Parse(out, "", nil)
	if diff := cmp.Diff([]string{"registry_auth.password"}, problemPaths(t, err)); diff != "" {
		t.Fatalf("Show output (-want +got):\n%s\n%s", diff, out)
	}
	_ = back
	fixed := strings.Replace(string(out), v1.Redacted, "s3cr3t-pw", 1)
	back, err = Parse([]byte(fixed), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(l.Spec, back.Spec); diff != "" {
		t.Errorf("spec after Show and Parse (-before +after):\n%s", diff)
	}
}

func TestRevisionIgnoresThePassword(t *testing.T) {
	doc, _, _, _ := secureDoc(t)
	a, err := Parse([]byte(doc), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte(strings.Replace(doc, "123456", "654321", 1)), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision != b.Revision {
		t.Errorf("revision %s vs %s: a password change should not show in the revision", a.Revision, b.Revision)
	}
	if !CredentialsChanged(a.Spec, b.Spec) || CredentialsChanged(a.Spec, a.Spec) {
		t.Error("CredentialsChanged does not see the password change")
	}
	c, _ := Parse([]byte(strings.Replace(doc, "tcp://gfa1:2376", "tcp://gfa1:2377", 1)), "APO", nil)
	if c == nil || c.Revision == a.Revision {
		t.Error("the revision should change with the engine address")
	}
}
