package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// SSHOptions tune an ssh:// engine.
type SSHOptions struct {
	// IdentityFile is the private key to log in with. Default: each of
	// ~/.ssh/id_ed25519 and ~/.ssh/id_rsa that exists. The ssh agent at
	// $SSH_AUTH_SOCK, when there is one, is tried too.
	IdentityFile string
	// KnownHosts is the known_hosts file the engine host's key must be
	// in. Default ~/.ssh/known_hosts.
	KnownHosts string
}

// Defaults of SSHOptions.
var (
	DefaultSSHIdentities = []string{"~/.ssh/id_ed25519", "~/.ssh/id_rsa"}
	DefaultKnownHosts    = "~/.ssh/known_hosts"
)

const (
	defaultSSHPort      = "22"
	defaultRemoteSocket = "/var/run/docker.sock"
)

// parseSSHAddress reads ssh://[user@]host[:port][/socket]: the user
// defaults to the current user, the port to 22 and the socket to
// /var/run/docker.sock.
func parseSSHAddress(address string) (*url.URL, error) {
	u, err := url.Parse(address)
	if err != nil || u.Hostname() == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not ssh://user@host[:port][/socket]", redactURL(address))
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("%q: a password is not supported, use a key", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: unexpected query or fragment", address)
	}
	name := u.User.Username()
	if name == "" {
		cur, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("%q: no user, and the current user is unknown: %w", address, err)
		}
		name = cur.Username
	}
	port := u.Port()
	if port == "" {
		port = defaultSSHPort
	}
	path := u.Path
	if path == "" || path == "/" {
		path = defaultRemoteSocket
	}
	return &url.URL{Scheme: "ssh", User: url.User(name), Host: net.JoinHostPort(u.Hostname(), port), Path: path}, nil
}

// sshDialer opens connections to the engine's unix socket on a node
// through one ssh connection, made on first use and made again when it
// breaks. Keys and known_hosts are read at each new ssh connection, so
// replaced files are used without a restart.
type sshDialer struct {
	addr, user, socket string
	opts               SSHOptions
	timeout            time.Duration
	keepAlive          net.KeepAliveConfig

	mu         sync.Mutex
	client     *ssh.Client
	connecting chan struct{} // closed when the connection being made is done
}

func newSSHDialer(u *url.URL, opts SSHOptions, timeout time.Duration, keepAlive net.KeepAliveConfig) (*sshDialer, error) {
	return &sshDialer{addr: u.Host, user: u.User.Username(), socket: u.Path, opts: opts, timeout: timeout, keepAlive: keepAlive}, nil
}

// DialContext opens a channel to the engine's socket (the network and
// address the HTTP transport asks for are the SDK's placeholder and are
// ignored). A failure on an ssh connection that has broken is retried
// once on a new one.
func (d *sshDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		c, fresh, err := d.get(ctx)
		if err != nil {
			return nil, err
		}
		conn, err := c.DialContext(ctx, "unix", d.socket)
		if err == nil {
			return conn, nil
		}
		if _, refused := errors.AsType[*ssh.OpenChannelError](err); refused {
			// The ssh connection works; the node refused the socket.
			return nil, fmt.Errorf("ssh %s@%s: engine socket %s: %w", d.user, d.addr, d.socket, err)
		}
		d.drop(c)
		if fresh || attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("ssh %s@%s: %w", d.user, d.addr, err)
		}
	}
}

// get returns the ssh connection, connecting when there is none; fresh
// says it was made by this call. Callers that find a connection being
// made wait for it, as long as their ctx lets them.
func (d *sshDialer) get(ctx context.Context) (c *ssh.Client, fresh bool, err error) {
	for {
		d.mu.Lock()
		if d.client != nil {
			c = d.client
			d.mu.Unlock()
			return c, false, nil
		}
		if wait := d.connecting; wait != nil {
			d.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		done := make(chan struct{})
		d.connecting = done
		d.mu.Unlock()

		c, err = d.connect(ctx)
		d.mu.Lock()
		d.connecting = nil
		if err == nil {
			d.client = c
		}
		close(done)
		d.mu.Unlock()
		if err != nil {
			return nil, false, err
		}
		go func() {
			_ = c.Wait() // the connection ended: the next dial makes a new one
			d.drop(c)
		}()
		return c, true, nil
	}
}

// drop forgets c (if it is still the current connection) and closes it.
func (d *sshDialer) drop(c *ssh.Client) {
	d.mu.Lock()
	if d.client == c {
		d.client = nil
	}
	d.mu.Unlock()
	_ = c.Close()
}

// Close closes the ssh connection; a later dial makes a new one.
func (d *sshDialer) Close() error {
	d.mu.Lock()
	c := d.client
	d.client = nil
	d.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// connect dials the node and logs in, all within ctx.
func (d *sshDialer) connect(ctx context.Context) (*ssh.Client, error) {
	where := "ssh " + d.user + "@" + d.addr
	auth, closeAgent, err := d.authMethods()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer closeAgent()
	conn, err := tcpDialer(d.timeout, d.keepAlive).DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	hostKey, algos, err := d.hostKeyCheck(conn.RemoteAddr())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	cfg := &ssh.ClientConfig{
		User: d.user, Auth: auth, HostKeyCallback: hostKey, HostKeyAlgorithms: algos,
		Timeout: d.timeout, ClientVersion: "SSH-2.0-fliswarm",
	}
	// The handshake ends with ctx, and within the per-call timeout in
	// any case (the HTTP transport dials with a context that a request's
	// timeout does not end); the connection then outlives both.
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	sc, chans, reqs, err := ssh.NewClientConn(conn, d.addr, cfg)
	if !stop() && err == nil {
		sc.Close()
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

// hostKeyCheck verifies the host key against known_hosts, with errors
// that say what to do, and offers the server only the key types
// known_hosts has for this host (else the server may show a key of
// another type than the one recorded, and be refused).
func (d *sshDialer) hostKeyCheck(remote net.Addr) (ssh.HostKeyCallback, []string, error) {
	file := d.opts.KnownHosts
	if file == "" {
		file = DefaultKnownHosts
	}
	path, err := v1.ExpandHome(file)
	if err != nil {
		return nil, nil, err
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts: %w (fliswarm checks every engine's host key)", err)
	}
	var algos []string
	var ke *knownhosts.KeyError
	if err := cb(d.addr, remote, probeKey{}); errors.As(err, &ke) {
		for _, k := range ke.Want {
			algos = append(algos, algorithmsFor(k.Key.Type())...)
		}
	}
	check := func(host string, addr net.Addr, key ssh.PublicKey) error {
		err := cb(host, addr, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &ke) && len(ke.Want) == 0:
			return fmt.Errorf("host key of %s is not in %s: add it (ssh-keyscan, or ssh to it once)", host, file)
		case errors.As(err, &ke):
			return fmt.Errorf("host key of %s (%s) does not match %s:%d: refusing it (another machine at that address?)",
				host, ssh.FingerprintSHA256(key), ke.Want[0].Filename, ke.Want[0].Line)
		case errors.As(err, &re):
			return fmt.Errorf("host key of %s is revoked in %s", host, file)
		}
		return err
	}
	return check, algos, nil
}

// probeKey is a key no known_hosts line matches: checking it lists the
// keys known for a host.
type probeKey struct{}

func (probeKey) Type() string                                { return "fliswarm-probe" }
func (probeKey) Marshal() []byte                             { return []byte("fliswarm-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error         { return errors.New("probe key") }
func (probeKey) VerifyWithAlgo([]byte, *ssh.Signature) error { return errors.New("probe key") }

// algorithmsFor lists the host key algorithms of a key type (an RSA key
// signs with SHA-2 first).
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// authMethods are the identity file (or the default ones that exist) and
// the ssh agent, when $SSH_AUTH_SOCK names one. The returned func closes
// the agent connection once logged in.
func (d *sshDialer) authMethods() ([]ssh.AuthMethod, func(), error) {
	files, explicit := DefaultSSHIdentities, false
	if d.opts.IdentityFile != "" {
		files, explicit = []string{d.opts.IdentityFile}, true
	}
	var signers []ssh.Signer
	var skipped []string
	for _, f := range files {
		s, err := loadSigner(f)
		switch {
		case err == nil:
			signers = append(signers, s)
		case explicit:
			return nil, nil, fmt.Errorf("identity file: %w", err)
		case !errors.Is(err, os.ErrNotExist):
			skipped = append(skipped, err.Error())
		}
	}
	var methods []ssh.AuthMethod
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	closeAgent := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.DialTimeout("unix", sock, d.timeout); err == nil {
			methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
			closeAgent = func() { conn.Close() }
		}
	}
	if len(methods) == 0 {
		msg := "no ssh key: none of " + strings.Join(files, ", ") + " is usable and no ssh agent ($SSH_AUTH_SOCK)"
		if len(skipped) > 0 {
			msg += " (" + strings.Join(skipped, "; ") + ")"
		}
		return nil, nil, errors.New(msg)
	}
	return methods, closeAgent, nil
}

// loadSigner reads an unencrypted private key (an encrypted one needs the
// agent).
func loadSigner(file string) (ssh.Signer, error) {
	path, err := v1.ExpandHome(file)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ssh.ParsePrivateKey(b)
	if _, ok := errors.AsType[*ssh.PassphraseMissingError](err); ok {
		return nil, fmt.Errorf("%s is protected by a passphrase: load it into an ssh agent instead", file)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}
