package device

import (
	"net"
	"time"

	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/clu"
)

// Defaults for the zero values of Options.
const (
	DefaultDialTimeout    = 2 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultInitialBackoff = 250 * time.Millisecond
	DefaultMaxBackoff     = time.Second
	DefaultMaxLineBytes   = 1 << 20
	// DefaultPingInterval and DefaultPingTimeout: a connection on which
	// nothing was read for an interval gets a `ping`, and is dropped when
	// the camera does not answer it in time, so a camera that stops
	// answering is seen within 2×interval+timeout (8 s).
	DefaultPingInterval = 2 * time.Second
	DefaultPingTimeout  = 4 * time.Second
)

// DefaultKeepAlive is the TCP keepalive of a camera connection: a peer that
// vanished while the connection is idle is seen within about 11 s even
// without the pings.
var DefaultKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}

// Options tune a Client. The zero value is usable.
type Options struct {
	// Logger receives the client's logs; it is given the value
	// camera=<name>. Default: discard.
	Logger logr.Logger
	// DialTimeout bounds one connection attempt. Default 2s.
	DialTimeout time.Duration
	// KeepAlive is the connection's TCP keepalive. Default
	// DefaultKeepAlive.
	KeepAlive net.KeepAliveConfig
	// CommandTimeout, when positive, bounds one command from send to
	// terminal reply. Default (0 or negative): none; a command ends when
	// the camera finishes it, when the connection drops (also when the
	// camera stops answering the liveness pings), or when the caller's
	// context ends. SendWithTimeout overrides it per command.
	CommandTimeout time.Duration
	// WriteTimeout bounds writing one command line. Default 10s. A write
	// that fails or times out drops the connection, because the stream can
	// no longer be trusted.
	WriteTimeout time.Duration
	// InitialBackoff is the first wait between failed connection attempts;
	// the wait then grows exponentially (with jitter) up to MaxBackoff and
	// starts again from InitialBackoff after a good connection. Defaults
	// 250ms and 1s: a camera whose port answers again is connected within
	// about DialTimeout+MaxBackoff without any Kick.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// PingInterval: when nothing was read from the camera for this long,
	// the client sends it a `ping`; PingTimeout bounds the answer, and a
	// camera that does not answer in time is disconnected (its commands in
	// flight end with ErrDisconnected, the cause ErrNotAnswering).
	// PingTimeout also bounds the handshake ping sent on every new
	// connection. Defaults 2s and 4s; a negative PingInterval turns the
	// idle pings off (not the handshake).
	PingInterval time.Duration
	PingTimeout  time.Duration
	// AnySender accepts replies whatever their header's sender. By
	// default every reply's sender must be the client's name (the node's
	// camera is started with ACTOR_NAME=<node>); a connection whose
	// sender is another is dropped with ErrWrongSender and the client
	// stays disconnected, retrying with backoff.
	AnySender bool
	// MaxLineBytes is the longest reply line accepted; a longer line is
	// skipped (and reported, see OnUnsolicited), the connection stays up.
	// Default 1 MiB.
	MaxLineBytes int
	// OnUnsolicited receives replies whose command_id is 0 or belongs to
	// no command in flight (the camera's broadcasts), in arrival order,
	// once the connection is verified (earlier ones are held until then).
	// A line that cannot be decoded, or is too long, is given as a reply
	// of its own: code `w` (`f` when it looked like a command's end),
	// sender the client's name, data {"text": UndecodableText + line} —
	// to its command when its command_id can be made out, otherwise here.
	// Replies to a command whose Send gave up (timeout, context) are not
	// given to anyone: they are discarded and counted (Discarded). It is
	// called from the connection's reader goroutine: it must return
	// quickly and must not wait for a Send of this Client to finish.
	OnUnsolicited func(clu.Reply)
	// InlineReplies gives a command's replies to its onReply on the
	// connection's reader goroutine, as they are read, instead of on the
	// goroutine waiting in SendWithTimeout: one goroutine hand-over fewer
	// per reply, for an onReply that never waits (the actor's relay, which
	// only queues lines). A slow onReply then delays every reply of this
	// camera.
	InlineReplies bool
	// OnState is told about the connection: (true, nil) when a connection
	// is established and verified, (false, cause) when it ends and after
	// every failed connection attempt, so the caller can record the latest
	// reason. Calls come from Run's goroutine, one at a time, in order; it
	// must return quickly.
	OnState func(connected bool, err error)
}

func (o Options) withDefaults() Options {
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if !o.KeepAlive.Enable && o.KeepAlive.Idle == 0 && o.KeepAlive.Interval == 0 && o.KeepAlive.Count == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = DefaultInitialBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = o.InitialBackoff
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = DefaultPingTimeout
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	return o
}
