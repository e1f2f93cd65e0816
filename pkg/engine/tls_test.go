package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// pki is a CA with the certificates of one engine (for 127.0.0.1) and of
// one client, as PEM.
type pki struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	server tls.Certificate
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fliswarm test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{ca: ca, caKey: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	certPEM, keyPEM := p.issue(t, "engine", x509.ExtKeyUsageServerAuth, net.IPv4(127, 0, 0, 1))
	if p.server, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// issue signs a certificate for usage (and ip, for a server).
func (p *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage, ip net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// clientDir writes a DOCKER_CERT_PATH directory: caPEM as ca.pem and a
// client certificate issued by p.
func (p *pki) clientDir(t *testing.T, caPEM []byte) string {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := p.issue(t, "fliswarm", x509.ExtKeyUsageClientAuth, nil)
	for name, b := range map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newTLSEngine is a fake engine that, like dockerd --tlsverify, requires
// a client certificate signed by p's CA.
func newTLSEngine(t *testing.T, p *pki) *fakeEngine {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	f := &fakeEngine{handlers: map[string]http.HandlerFunc{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	f.Config.ErrorLog = nil
	f.StartTLS()
	t.Cleanup(f.Close)
	return f
}

func tlsClient(t *testing.T, f *fakeEngine, opts Options) (*Client, error) {
	t.Helper()
	opts.Timeout = 5 * time.Second
	c, err := New("gfa1", "tcp://"+f.Listener.Addr().String(), opts)
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, err
}

func TestTLSEngineWithClientCertificate(t *testing.T) {
	p := newPKI(t)
	f := newTLSEngine(t, p)
	var gotAuth string
	f.handle("POST", "/images/create", func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("X-Registry-Auth")
		_, _ = w.Write([]byte(`{"status":"Status: Image is up to date"}` + "\n"))
	})
	auth := func() (string, error) { return EncodeRegistryAuth("sdss", "hunter2", "hub:5000") }
	c, err := tlsClient(t, f, Options{TLS: &TLSOptions{CertPath: p.clientDir(t, p.caPEM), Verify: true}, RegistryAuth: auth})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatalf("Ping over TLS: %v", err)
	}
	if err := c.PullImage(context.Background(), "hub:5000/sdss/flicamera:latest", PullOptions{}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	b, err := base64.URLEncoding.DecodeString(gotAuth)
	if err != nil {
		t.Fatalf("X-Registry-Auth %q: %v", gotAuth, err)
	}
	var ac struct{ Username, Password, ServerAddress string }
	if err := json.Unmarshal(b, &ac); err != nil || ac.Username != "sdss" || ac.Password != "hunter2" || ac.ServerAddress != "hub:5000" {
		t.Errorf("X-Registry-Auth = %s (%v)", b, err)
	}
}

func TestTLSEngineRefusals(t *testing.T) {
	p := newPKI(t)
	f := newTLSEngine(t, p)
	other := newPKI(t)
	tests := []struct {
		name string
		opts Options
	}{
		{"plain HTTP to a TLS engine", Options{}},
		{"engine certificate from an unknown CA", Options{TLS: &TLSOptions{CertPath: p.clientDir(t, other.caPEM), Verify: true}}},
		{"client certificate from another CA", Options{TLS: &TLSOptions{CertPath: other.clientDir(t, p.caPEM), Verify: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tlsClient(t, f, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Ping(context.Background()); err == nil {
				t.Fatal("Ping succeeded")
			} else if !strings.HasPrefix(err.Error(), "gfa1: ping: ") {
				t.Errorf("error %q lacks the node and operation", err)
			}
		})
	}
	// verify: false still presents the client certificate, and accepts
	// any engine certificate.
	c, err := tlsClient(t, f, Options{TLS: &TLSOptions{CertPath: p.clientDir(t, other.caPEM), Verify: false}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping with verify false: %v", err)
	}
}

func TestTLSMissingMaterial(t *testing.T) {
	dir := t.TempDir()
	_, err := New("gfa1", "tcp://127.0.0.1:2376", Options{TLS: &TLSOptions{CertPath: dir, Verify: true}})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.HasPrefix(err.Error(), "gfa1: ") {
		t.Fatalf("New with an empty cert dir: %v", err)
	}
}

func TestOptionsForAndRegistryAuthFor(t *testing.T) {
	c := v1.EngineConnection{Address: "tcp://a:2376", TLS: true, TLSCertPath: "/c", TLSVerify: true}
	if o := OptionsFor(c, Options{Timeout: time.Second}); o.TLS == nil || *o.TLS != (TLSOptions{CertPath: "/c", Verify: true}) || o.Timeout != time.Second {
		t.Errorf("OptionsFor(TLS) = %+v", o)
	}
	s := OptionsFor(v1.EngineConnection{Address: "ssh://a", SSHKnownHosts: "/kh"}, Options{})
	if s.TLS != nil || s.SSH.KnownHosts != "/kh" {
		t.Errorf("OptionsFor(ssh) = %+v", s)
	}

	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		auth *v1.RegistryAuth
		want string
	}{
		{nil, ""},
		{&v1.RegistryAuth{Username: "u", Password: "inline"}, `{"username":"u","password":"inline","serveraddress":"hub:5000"}`},
		{&v1.RegistryAuth{Username: "u", PasswordFile: pwFile}, `{"username":"u","password":"from-file","serveraddress":"hub:5000"}`},
	} {
		got, err := RegistryAuthFor(&v1.Swarm{Registry: "hub:5000", RegistryAuth: tt.auth})
		if err != nil {
			t.Fatal(err)
		}
		dec, _ := base64.URLEncoding.DecodeString(got)
		if string(dec) != tt.want {
			t.Errorf("RegistryAuthFor(%v) = %s, want %s", tt.auth, dec, tt.want)
		}
	}
	_, err := RegistryAuthFor(&v1.Swarm{RegistryAuth: &v1.RegistryAuth{Username: "u", PasswordFile: "/nonexistent/pw"}})
	if err == nil || !strings.Contains(err.Error(), "registry password") {
		t.Errorf("missing password file: %v", err)
	}
}
