package v1

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func boolp(b bool) *bool { return &b }

func TestEngineConnectionResolvesGlobalAndNodeSettings(t *testing.T) {
	s := &Swarm{
		TLS: &TLS{CertPath: "/etc/fliswarm/certs"},
		SSH: &SSH{IdentityFile: "/etc/fliswarm/id", KnownHosts: "/etc/fliswarm/known_hosts"},
		Nodes: map[string]Node{
			"plain":  {DockerClient: "tcp://a:2375", TLS: &TLS{Disabled: true}},
			"global": {DockerClient: "tcp://b:2376"},
			"own":    {DockerClient: "tcp://c:2376", TLS: &TLS{CertPath: "/etc/own", Verify: boolp(false)}},
			"ssh":    {DockerClient: "ssh://root@d", SSH: &SSH{KnownHosts: "/etc/kh"}},
			"unix":   {DockerClient: "unix:///var/run/docker.sock"},
		},
	}
	s.SetDefaults()
	tests := map[string]EngineConnection{
		"plain":  {Address: "tcp://a:2375"},
		"global": {Address: "tcp://b:2376", TLS: true, TLSCertPath: "/etc/fliswarm/certs", TLSVerify: true},
		"own":    {Address: "tcp://c:2376", TLS: true, TLSCertPath: "/etc/own", TLSVerify: false},
		"ssh":    {Address: "ssh://root@d", SSHIdentityFile: "/etc/fliswarm/id", SSHKnownHosts: "/etc/kh"},
		"unix":   {Address: "unix:///var/run/docker.sock"},
		"absent": {},
	}
	for node, want := range tests {
		if diff := cmp.Diff(want, s.EngineConnection(node)); diff != "" {
			t.Errorf("EngineConnection(%s) (-want +got):\n%s", node, diff)
		}
	}
}

func TestEngineSecurity(t *testing.T) {
	s := &Swarm{Nodes: map[string]Node{
		"gfa1": {DockerClient: "tcp://gfa1:2375"},
		"gfa2": {DockerClient: "tcp://gfa2:2376", TLS: &TLS{CertPath: "/c"}},
		"gfa3": {DockerClient: "tcp://gfa3:2376", TLS: &TLS{CertPath: "/c", Verify: boolp(false)}},
		"fvc":  {DockerClient: "ssh://root@fvc"},
		"loc":  {DockerClient: "unix:///var/run/docker.sock"},
	}}
	s.SetDefaults()
	for node, want := range map[string]string{
		"gfa1": "plain TCP gives root on gfa1 to anyone on the network",
		"gfa3": "TLS without verifying",
		"gfa2": "", "fvc": "", "loc": "",
	} {
		secure, warning := s.EngineSecurity(node)
		if secure != (want == "") || !strings.Contains(warning, want) || (want == "" && warning != "") {
			t.Errorf("EngineSecurity(%s) = %v, %q; want a warning containing %q", node, secure, warning, want)
		}
	}
}

func TestSetEngineSecurityWarnsOnce(t *testing.T) {
	now := time.Unix(1000, 0)
	st := &NodeStatus{Name: "gfa1"}
	c := EngineConnection{Address: "tcp://gfa1:2375"}
	st.SetEngineSecurity(c, now)
	st.SetEngineSecurity(c, now.Add(time.Minute))
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "plain TCP gives root on gfa1") {
		t.Fatalf("Warnings = %q, want the plain TCP warning once", st.Warnings)
	}
	cond := st.Condition(ConditionEngineSecure)
	if cond == nil || cond.Status || cond.Reason != ReasonPlainTCP || !cond.LastTransitionTime.Equal(now) {
		t.Fatalf("condition = %+v", cond)
	}
	tls := &NodeStatus{Name: "gfa2"}
	tls.SetEngineSecurity(EngineConnection{Address: "tcp://gfa2:2376", TLS: true, TLSCertPath: "/c", TLSVerify: true}, now)
	if len(tls.Warnings) != 0 || !tls.Condition(ConditionEngineSecure).Status {
		t.Fatalf("TLS node: %+v", tls)
	}
}

func TestSecretNeverShown(t *testing.T) {
	a := RegistryAuth{Username: "sdss", Password: "hunter2"}
	b, err := json.Marshal(struct{ Auth RegistryAuth }{a})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(b), fmt.Sprintf("%v %+v %#v %s", a, a, a, a.Password), fmt.Sprint(&a)} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("password shown: %s", out)
		}
	}
	if !strings.Contains(string(b), Redacted) {
		t.Errorf("JSON %s lacks %q", b, Redacted)
	}
	if a.Password.Reveal() != "hunter2" {
		t.Errorf("Reveal = %q", a.Password.Reveal())
	}
	if Secret("").String() != "" {
		t.Error("an empty secret should show as empty")
	}
}

func TestValidateSecuritySettings(t *testing.T) {
	perObs := Paths{Nodes: "nodes.APO", EnabledNodes: "enabled_nodes.APO"}
	tests := []struct {
		name   string
		mutate func(s *Swarm)
		want   []string
	}{
		{"global tls without cert_path", func(s *Swarm) { s.TLS = &TLS{} }, []string{"tls.cert_path"}},
		{"relative cert_path", func(s *Swarm) { s.TLS = &TLS{CertPath: "certs"} }, []string{"tls.cert_path"}},
		{"global tls false", func(s *Swarm) { s.TLS = &TLS{Disabled: true} }, []string{"tls"}},
		{"node tls on unix", func(s *Swarm) {
			n := s.Nodes["gfa2"]
			n.TLS = &TLS{CertPath: "/c"}
			s.Nodes["gfa2"] = n
		}, []string{"nodes.APO.gfa2.tls"}},
		{"node tls without any cert_path", func(s *Swarm) {
			n := s.Nodes["gfa1"]
			n.TLS = &TLS{Verify: boolp(true)}
			s.Nodes["gfa1"] = n
		}, []string{"nodes.APO.gfa1.tls.cert_path"}},
		{"node ssh on tcp", func(s *Swarm) {
			n := s.Nodes["gfa1"]
			n.SSH = &SSH{KnownHosts: "kh"}
			s.Nodes["gfa1"] = n
		}, []string{"nodes.APO.gfa1.ssh", "nodes.APO.gfa1.ssh.known_hosts"}},
		{"ssh relative identity", func(s *Swarm) { s.SSH = &SSH{IdentityFile: "id_rsa"} }, []string{"ssh.identity_file"}},
		{"auth without password", func(s *Swarm) { s.RegistryAuth = &RegistryAuth{Username: "u"} }, []string{"registry_auth"}},
		{"auth with both", func(s *Swarm) {
			s.RegistryAuth = &RegistryAuth{Username: "u", Password: "p", PasswordFile: "/p"}
		}, []string{"registry_auth"}},
		{"auth without username", func(s *Swarm) { s.RegistryAuth = &RegistryAuth{Password: "p"} }, []string{"registry_auth.username"}},
		{"auth placeholder", func(s *Swarm) { s.RegistryAuth = &RegistryAuth{Username: "u", Password: Redacted} }, []string{"registry_auth.password"}},
		{"auth relative file", func(s *Swarm) { s.RegistryAuth = &RegistryAuth{Username: "u", PasswordFile: "pw"} }, []string{"registry_auth.password_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.mutate(s)
			s.SetDefaults()
			if diff := cmp.Diff(tt.want, paths(s.Validate(perObs))); diff != "" {
				t.Errorf("paths (-want +got):\n%s", diff)
			}
		})
	}
	ok := valid()
	ok.TLS = &TLS{CertPath: "~/.docker"}
	ok.SSH = &SSH{KnownHosts: "/etc/kh"}
	n := ok.Nodes["gfa1"]
	n.TLS = &TLS{Disabled: true}
	ok.Nodes["gfa1"] = n
	ok.RegistryAuth = &RegistryAuth{Username: "u", PasswordFile: "/etc/fliswarm/registry.pw"}
	ok.SetDefaults()
	if errs := ok.Validate(DefaultPaths); len(errs) != 0 {
		t.Fatalf("valid secure settings rejected:\n%v", errs)
	}
	if ok.TLS.Verify == nil || !*ok.TLS.Verify {
		t.Error("tls.verify should default to true")
	}
}
