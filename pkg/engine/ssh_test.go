package engine

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is an in-process ssh server that, like sshd, forwards
// direct-streamlocal channels to unix sockets: here only to the fake
// engine's socket.
type sshServer struct {
	t        *testing.T
	ln       net.Listener
	hostKey  ssh.Signer
	socket   string
	mu       sync.Mutex
	conns    []*ssh.ServerConn
	accepted int
}

func newSSHServer(t *testing.T, clientKey ssh.PublicKey, socket string) *sshServer {
	t.Helper()
	s := &sshServer{t: t, hostKey: newSigner(t), socket: socket}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if c.User() == "root" && string(k.Marshal()) == string(clientKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.hostKey)
	var err error
	if s.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.ln.Close(); s.closeConns() })
	go func() {
		for {
			nc, err := s.ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc, cfg)
		}
	}()
	return s
}

func (s *sshServer) serve(nc net.Conn, cfg *ssh.ServerConfig) {
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		nc.Close()
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, sc)
	s.accepted++
	s.mu.Unlock()
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "direct-streamlocal@openssh.com" {
			_ = nch.Reject(ssh.UnknownChannelType, "only streamlocal")
			continue
		}
		var msg struct {
			Path      string
			Reserved0 string
			Reserved1 uint32
		}
		if err := ssh.Unmarshal(nch.ExtraData(), &msg); err != nil || msg.Path != s.socket {
			_ = nch.Reject(ssh.ConnectionFailed, "no such socket: "+msg.Path)
			continue
		}
		up, err := net.Dial("unix", msg.Path)
		if err != nil {
			_ = nch.Reject(ssh.ConnectionFailed, err.Error())
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			up.Close()
			continue
		}
		go ssh.DiscardRequests(creqs)
		go func() { _, _ = io.Copy(ch, up); ch.Close() }()
		go func() { _, _ = io.Copy(up, ch); up.Close() }()
	}
}

func (s *sshServer) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func (s *sshServer) logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unixEngine is the fake engine listening on a unix socket.
func unixEngine(t *testing.T) (*fakeEngine, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEngine{handlers: map[string]http.HandlerFunc{}}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.Listener.Close()
	f.Listener = ln
	f.Start()
	t.Cleanup(f.Close)
	return f, sock
}

// sshSetup is an engine behind an ssh server, with the client's key and
// a known_hosts file holding hostKey for the server's address.
type sshSetup struct {
	engine     *fakeEngine
	server     *sshServer
	identity   string
	knownHosts string
	address    string
}

func newSSHSetup(t *testing.T, knownKey func(s *sshServer) ssh.PublicKey) *sshSetup {
	t.Helper()
	t.Setenv("SSH_AUTH_SOCK", "")
	f, sock := unixEngine(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv := newSSHServer(t, signer.PublicKey(), sock)
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	line := ""
	if key := knownKey(srv); key != nil {
		line = knownhosts.Line([]string{knownhosts.Normalize(srv.ln.Addr().String())}, key) + "\n"
	}
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return &sshSetup{engine: f, server: srv, identity: id, knownHosts: kh,
		address: "ssh://root@" + srv.ln.Addr().String() + sock}
}

func (s *sshSetup) client(t *testing.T, timeout time.Duration) *Client {
	t.Helper()
	c, err := New("fvc", s.address, Options{Timeout: timeout, SSH: SSHOptions{IdentityFile: s.identity, KnownHosts: s.knownHosts}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSSHEngine(t *testing.T) {
	s := newSSHSetup(t, func(s *sshServer) ssh.PublicKey { return s.hostKey.PublicKey() })
	s.engine.handle("GET", "/images/flicamera/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Id":"sha256:abc","RepoTags":["flicamera:latest"]}`))
	})
	c := s.client(t, 5*time.Second)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping over ssh: %v", err)
	}
	img, err := c.InspectImage(ctx, "flicamera")
	if err != nil || img.ID != "sha256:abc" {
		t.Fatalf("InspectImage over ssh = %+v, %v", img, err)
	}
	if n := s.server.logins(); n != 1 {
		t.Errorf("%d ssh logins for two calls, want 1 connection reused", n)
	}
	// The node's sshd goes away (a reboot): the next call logs in again.
	s.server.closeConns()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping after the ssh connection closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := s.server.logins(); n != 2 {
		t.Errorf("%d ssh logins, want 2 (one new after the old connection closed)", n)
	}
}

func TestSSHHostKeyChecked(t *testing.T) {
	tests := []struct {
		name string
		key  func(s *sshServer) ssh.PublicKey
		want string
	}{
		{"mismatch", func(*sshServer) ssh.PublicKey { return newSigner(t).PublicKey() }, "does not match"},
		{"unknown host", func(*sshServer) ssh.PublicKey { return nil }, "is not in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSSHSetup(t, tt.key)
			err := s.client(t, 5*time.Second).Ping(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "fvc: ping: ") {
				t.Fatalf("Ping = %v, want an error containing %q", err, tt.want)
			}
			if n := s.server.logins(); n != 0 {
				t.Errorf("%d logins went through a refused host key", n)
			}
		})
	}
}

func TestSSHErrors(t *testing.T) {
	s := newSSHSetup(t, func(s *sshServer) ssh.PublicKey { return s.hostKey.PublicKey() })
	// Another socket path: the ssh server refuses the channel.
	c, err := New("fvc", strings.TrimSuffix(s.address, "docker.sock")+"other.sock",
		Options{Timeout: 5 * time.Second, SSH: SSHOptions{IdentityFile: s.identity, KnownHosts: s.knownHosts}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "engine socket") {
		t.Errorf("Ping of a missing socket: %v", err)
	}
	// An identity file that does not exist.
	c2, err := New("fvc", s.address, Options{SSH: SSHOptions{IdentityFile: "/nonexistent/id", KnownHosts: s.knownHosts}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "identity file") {
		t.Errorf("Ping with a missing identity: %v", err)
	}
}

func TestSSHPerCallTimeout(t *testing.T) {
	// A server that accepts TCP and never speaks ssh.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s := newSSHSetup(t, func(s *sshServer) ssh.PublicKey { return s.hostKey.PublicKey() })
	c, err := New("fvc", "ssh://root@"+ln.Addr().String(),
		Options{Timeout: 300 * time.Millisecond, SSH: SSHOptions{IdentityFile: s.identity, KnownHosts: s.knownHosts}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	err = c.Ping(context.Background())
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("Ping of a silent ssh server: %v after %s", err, time.Since(start))
	}
	if !IsUnreachable(err) {
		t.Errorf("IsUnreachable(%v) = false", err)
	}
}
