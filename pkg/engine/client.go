package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/docker/go-connections/sockets"
	"github.com/go-logr/logr"
	"github.com/moby/moby/client"
)

// DefaultTimeout is the per-call timeout used when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// defaultTCPPort is the port used for a tcp:// address that names none
// (the engine's conventional plain-TCP port).
const defaultTCPPort = "2375"

// defaultTLSPort is the port of a tcp:// address with TLS that names none
// (the engine's conventional TLS port).
const defaultTLSPort = "2376"

// Options tune a Client.
type Options struct {
	// Timeout bounds every call to the engine (default DefaultTimeout).
	// PullImage gets ten times as long; StopContainer gets it on top of
	// the stop timeout it is given. The event stream has no overall
	// timeout, only this much to get connected.
	Timeout time.Duration
	// Logger receives one debug line (V(1)) per call and the engine's
	// warnings; the node name is added to it. The zero Logger discards.
	Logger logr.Logger
	// TLS, when set, reaches a tcp:// engine over TLS (port 2376 when the
	// address names none).
	TLS *TLSOptions
	// SSH tunes how an ssh:// engine is reached.
	SSH SSHOptions
	// KeepAlive is the keepalive probes of tcp:// and ssh:// connections
	// (zero: DefaultKeepAlive).
	KeepAlive net.KeepAliveConfig
	// RegistryAuth, when set, gives the registry credentials for each
	// pull, encoded as the X-Registry-Auth header (EncodeRegistryAuth);
	// "" pulls anonymously. PullOptions.RegistryAuth overrides it.
	RegistryAuth func() (string, error)
}

// Client talks to the Docker Engine of one node. It is safe for
// concurrent use.
type Client struct {
	node    string
	address string
	timeout time.Duration
	log     logr.Logger
	api     *client.Client
	auth    func() (string, error)
	// closeTransport ends what the transport holds open (an ssh
	// connection); nil for tcp and unix.
	closeTransport func() error
}

// New returns a Client for the engine of node at address, which is
// tcp://host[:port] (port 2375 when missing, 2376 with TLS),
// ssh://[user@]host[:port][/socket] (the engine's socket on the host,
// default /var/run/docker.sock) or unix:///path/to/socket.
// It does no I/O: the first call connects and negotiates the API version
// (for ssh: logs in, checking the host key against known_hosts).
func New(node, address string, opts Options) (*Client, error) {
	u, err := parseAddress(address, opts.TLS != nil)
	if err != nil {
		return nil, fmt.Errorf("%s: engine address: %w", node, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	transport, closeTransport, err := newTransport(u, opts, timeout)
	if err != nil {
		return nil, fmt.Errorf("%s: engine %s: %w", node, redactURL(address), err)
	}
	host := u.Scheme + "://" + u.Host
	if u.Scheme == "unix" {
		host = "unix://" + u.Path
	}
	// WithHost configures the SDK's default transport; WithHTTPClient then
	// replaces it with ours (no proxy, keepalive probes), keeping the host.
	api, err := client.New(
		client.WithHost(host),
		client.WithHTTPClient(&http.Client{Transport: transport, CheckRedirect: client.CheckRedirect}),
		client.WithUserAgent("fliswarm"),
	)
	if err != nil {
		if closeTransport != nil {
			_ = closeTransport()
		}
		return nil, fmt.Errorf("%s: engine client for %s: %w", node, redactURL(address), err)
	}
	return &Client{
		node:           node,
		address:        address,
		timeout:        timeout,
		log:            opts.Logger.WithValues("node", node),
		api:            api,
		auth:           opts.RegistryAuth,
		closeTransport: closeTransport,
	}, nil
}

// parseAddress validates an engine address and fills in the default port.
// The result has Scheme "tcp" with Host "host:port", Scheme "ssh" with
// User, Host "host:port" and Path the engine's socket, or Scheme "unix"
// with Path set to the socket.
func parseAddress(address string, tls bool) (*url.URL, error) {
	scheme, rest, ok := strings.Cut(address, "://")
	if !ok || rest == "" {
		return nil, fmt.Errorf("%q is not tcp://host:port, ssh://user@host or unix:///path", redactURL(address))
	}
	defaultTCPPort := defaultTCPPort
	if tls {
		defaultTCPPort = defaultTLSPort
	}
	switch scheme {
	case "ssh":
		return parseSSHAddress(address)
	case "tcp":
		if strings.ContainsAny(rest, "/?#@") {
			return nil, fmt.Errorf("%q: a tcp address is only host[:port]", address)
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			// No port (or a bare IPv6 address without brackets).
			host, port = strings.Trim(rest, "[]"), defaultTCPPort
		}
		if host == "" {
			return nil, fmt.Errorf("%q: no host", address)
		}
		if port == "" {
			port = defaultTCPPort
		}
		return &url.URL{Scheme: "tcp", Host: net.JoinHostPort(host, port)}, nil
	case "unix":
		if !strings.HasPrefix(rest, "/") {
			return nil, fmt.Errorf("%q: a unix socket path must be absolute", address)
		}
		return &url.URL{Scheme: "unix", Path: rest}, nil
	default:
		return nil, fmt.Errorf("%q: unsupported scheme %q (want tcp, ssh or unix)", address, scheme)
	}
}

// newTransport builds the HTTP transport for one engine: the SDK's dialer
// for unix sockets; for TCP a dialer with keepalive probes (so a node that
// vanishes without closing its connections ends an event stream within
// about half a minute, or as Options.KeepAlive says), and TLS when configured (Docker's own tlsconfig,
// from a DOCKER_CERT_PATH directory); for ssh one ssh connection to the
// node (with the same keepalive probes) whose channels to the engine's
// socket carry the requests. Never an HTTP proxy, whatever the
// environment says: the engines are on the observatory's LAN. The
// returned func closes what the transport keeps open (nil if nothing).
func newTransport(u *url.URL, opts Options, timeout time.Duration) (*http.Transport, func() error, error) {
	tr := &http.Transport{MaxIdleConns: 6, IdleConnTimeout: 30 * time.Second}
	var closeFn func() error
	switch u.Scheme {
	case "unix":
		if err := sockets.ConfigureTransport(tr, "unix", u.Path); err != nil {
			return nil, nil, err
		}
	case "ssh":
		d, err := newSSHDialer(u, opts.SSH, timeout, opts.KeepAlive)
		if err != nil {
			return nil, nil, err
		}
		tr.DialContext, closeFn = d.DialContext, d.Close
	default:
		tr.DialContext = tcpDialer(timeout, opts.KeepAlive).DialContext
		if opts.TLS != nil {
			cfg, err := clientTLS(*opts.TLS)
			if err != nil {
				return nil, nil, err
			}
			tr.TLSClientConfig = cfg
		}
	}
	tr.Proxy = nil
	return tr, closeFn, nil
}

// DefaultKeepAlive is the keepalive probes of a TCP connection to an
// engine when Options.KeepAlive is zero: 15 s idle, then every 5 s, 3
// missed probes end the connection.
var DefaultKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// FastKeepAlive notices a vanished node within about 10 s: 5 s idle, then
// every 2 s, 3 missed. A probe costs the node's kernel an ACK, and its
// engine nothing. The controller uses it: while a node's event stream is
// up, the stream's end is what has the node pinged.
var FastKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}

// tcpDialer dials with keepalive probes ka (zero: DefaultKeepAlive).
func tcpDialer(timeout time.Duration, ka net.KeepAliveConfig) *net.Dialer {
	if ka == (net.KeepAliveConfig{}) {
		ka = DefaultKeepAlive
	}
	return &net.Dialer{Timeout: timeout, KeepAliveConfig: ka}
}

// redactURL hides a password written in an address (ssh://user:pw@host).
func redactURL(address string) string {
	if u, err := url.Parse(address); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return address
}

// Close releases idle connections. Calls after Close open new ones.
func (c *Client) Close() error {
	if c.closeTransport != nil {
		_ = c.closeTransport()
	}
	if err := c.api.Close(); err != nil {
		return fmt.Errorf("%s: close engine client: %w", c.node, err)
	}
	return nil
}

// APIVersion is the API version the client uses: the negotiated one after
// a successful Ping (or any successful call), else the SDK's maximum.
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Ping asks the engine's /_ping endpoint whether it answers, and settles the
// API version to use on first success. It fails on an engine whose API is
// older than the SDK supports (1.40).
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, c.timeout, "ping", func(ctx context.Context) error {
		_, err := c.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		return err
	})
}

// do runs one engine call under the per-call timeout and wraps its error
// as "<node>: <op>: <cause>". A call cut off by its own timeout (not by the
// caller's context) gets a *TimeoutError, which IsUnreachable reports.
func (c *Client) do(ctx context.Context, timeout time.Duration, op string, f func(ctx context.Context) error) error {
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := f(callCtx)
	c.log.V(1).Info("engine call", "op", op, "duration", time.Since(start).Round(time.Millisecond), "error", err)
	if err == nil {
		return nil
	}
	return c.wrap(ctx, callCtx, timeout, op, err)
}

// wrap turns err, from a call that ran under callCtx (derived from ctx
// with timeout), into the package's error form.
func (c *Client) wrap(ctx, callCtx context.Context, timeout time.Duration, op string, err error) error {
	if _, ok := errors.AsType[*TimeoutError](err); !ok && ctx.Err() == nil &&
		errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		err = &TimeoutError{After: timeout, Err: err}
	}
	return fmt.Errorf("%s: %s: %w", c.node, op, err)
}
