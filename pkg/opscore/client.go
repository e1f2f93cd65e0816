package opscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// greetingTimeout bounds the wait for the greeting when the Dial context
// has no earlier deadline.
const greetingTimeout = 10 * time.Second

// maxReplyLine is the longest reply line a Client accepts.
const maxReplyLine = 4 << 20

// ErrClientClosed is returned by Send once the connection is closed.
var ErrClientClosed = errors.New("opscore: client connection closed")

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClientLogger sets the client's logger (default logr.Discard()).
func WithClientLogger(log logr.Logger) ClientOption { return func(c *Client) { c.log = log } }

// WithUnsolicited sets a function called for every reply that belongs to no
// command sent by this client: broadcasts, the greeting, late replies. It
// runs on the client's reading goroutine and must not block for long.
func WithUnsolicited(f func(Reply)) ClientOption { return func(c *Client) { c.unsolicited = f } }

// WithCommander makes the client start every command line with this
// commander name (it must contain a dot, e.g. "fliswarm.send").
func WithCommander(name string) ClientOption { return func(c *Client) { c.commander = name } }

// Client is a user connection to an opscore actor.
type Client struct {
	nc          net.Conn
	log         logr.Logger
	unsolicited func(Reply)
	commander   string
	userID      int
	version     string

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  int
	pending map[int]*pending

	closed    chan struct{}
	closeOnce sync.Once
	err       error // why the connection closed; set before closed is
}

type pending struct {
	onReply func(Reply)
	done    chan Reply // the terminal reply, buffered

	mu      sync.Mutex // held while onReply runs
	stopped bool       // Send has returned: no more onReply calls
}

// Dial connects to the actor at addr and reads its greeting (up to the
// `version` line), which gives the client its user id.
func Dial(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("opscore: dial %s: %w", addr, err)
	}
	c := &Client{
		nc:      nc,
		log:     logr.Discard(),
		pending: make(map[int]*pending),
		closed:  make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}

	deadline := time.Now().Add(greetingTimeout)
	fromCtx := false
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline, fromCtx = dl, true
	}
	_ = nc.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })

	sc := bufio.NewScanner(nc)
	sc.Buffer(make([]byte, 0, 64<<10), maxReplyLine)
	err = c.readGreeting(sc)
	switch {
	case !stop() || ctx.Err() != nil:
		err = fmt.Errorf("opscore: reading the greeting from %s: %w", addr, context.Cause(ctx))
	case err != nil && fromCtx && errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("opscore: reading the greeting from %s: %w", addr, context.DeadlineExceeded)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Time{})
	go c.readLoop(sc)
	return c, nil
}

func (c *Client) readGreeting(sc *bufio.Scanner) error {
	for sc.Scan() {
		r, err := ParseReply(sc.Text())
		if err != nil {
			return fmt.Errorf("opscore: bad greeting line: %w", err)
		}
		if k, ok := r.Get("yourUserID"); ok && len(k.Values) == 1 && c.userID == 0 {
			id, err := strconv.Atoi(k.Values[0].(string))
			if err != nil || id <= 0 {
				return fmt.Errorf("opscore: bad yourUserID in the greeting: %q", r.Line)
			}
			c.userID = id
		}
		if k, ok := r.Get("version"); ok && c.userID != 0 && r.UserID == c.userID {
			if len(k.Values) > 0 {
				c.version = k.Values[0].(string)
			}
			c.deliverUnsolicited(r)
			return nil
		}
		c.deliverUnsolicited(r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("opscore: reading the greeting: %w", err)
	}
	return errors.New("opscore: connection closed during the greeting")
}

// UserID returns the user id the actor gave this connection.
func (c *Client) UserID() int { return c.userID }

// Version returns the version the actor announced.
func (c *Client) Version() string { return c.version }

// Done returns a channel closed when the connection is closed.
func (c *Client) Done() <-chan struct{} { return c.closed }

// Err returns why the connection closed, or nil while it is open.
func (c *Client) Err() error {
	select {
	case <-c.closed:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection; commands still waiting fail.
func (c *Client) Close() error {
	c.shutdown(ErrClientClosed)
	return nil
}

func (c *Client) shutdown(err error) {
	c.closeOnce.Do(func() {
		c.err = err
		close(c.closed)
		c.nc.Close()
	})
}

// Send sends one command (a body such as `talk -n gfa1 status`) with a
// fresh command id and waits for its terminal reply, which it returns.
// onReply, if not nil, is called for every reply of the command, the
// terminal one included, in order, on the client's reading goroutine; it
// is never called after Send has returned. The error is only about the
// transport or ctx: a failed command is a nil error with a final reply
// whose Code is `f` or `!`. A body starting with a number would be read by
// the actor as a second id, and a body may not contain a newline.
func (c *Client) Send(ctx context.Context, body string, onReply func(Reply)) (Reply, error) {
	if strings.ContainsAny(body, "\r\n") {
		return Reply{}, errors.New("opscore: a command may not contain a newline")
	}
	p := &pending{onReply: onReply, done: make(chan Reply, 1)}
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return Reply{}, fmt.Errorf("opscore: send: %w", c.err)
	default:
	}
	id := c.nextID
	for {
		id++
		if id <= 0 {
			id = 1
		}
		if c.pending[id] == nil {
			break
		}
	}
	c.nextID = id
	c.pending[id] = p
	c.mu.Unlock()
	defer c.forget(id, p)

	var b strings.Builder
	if c.commander != "" {
		b.WriteString(c.commander)
		b.WriteByte(' ')
	}
	b.WriteString(strconv.Itoa(id))
	b.WriteByte(' ')
	b.WriteString(body)
	b.WriteByte('\n')
	if err := c.write(ctx, b.String()); err != nil {
		return Reply{}, err
	}

	select {
	case r := <-p.done:
		return r, nil
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	case <-c.closed:
		select {
		case r := <-p.done:
			return r, nil
		default:
		}
		return Reply{}, fmt.Errorf("opscore: command %d: %w", id, c.err)
	}
}

func (c *Client) forget(id int, p *pending) {
	c.mu.Lock()
	if c.pending[id] == p {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}

func (c *Client) write(ctx context.Context, line string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
		defer c.nc.SetWriteDeadline(time.Time{})
	}
	if _, err := c.nc.Write([]byte(line)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.shutdown(fmt.Errorf("opscore: write: %w", err))
		return fmt.Errorf("opscore: send: %w", err)
	}
	return nil
}

func (c *Client) readLoop(sc *bufio.Scanner) {
	for sc.Scan() {
		r, err := ParseReply(sc.Text())
		if err != nil {
			c.log.Info("ignoring a bad reply line", "line", sc.Text(), "error", err.Error())
			continue
		}
		c.dispatch(r)
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("opscore: connection closed by the actor")
	} else {
		err = fmt.Errorf("opscore: read: %w", err)
	}
	c.shutdown(err)
}

func (c *Client) dispatch(r Reply) {
	var p *pending
	if r.UserID == c.userID && r.CmdID != 0 {
		c.mu.Lock()
		p = c.pending[r.CmdID]
		if p != nil && r.Code.Terminal() {
			delete(c.pending, r.CmdID)
		}
		c.mu.Unlock()
	}
	if p == nil {
		c.deliverUnsolicited(r)
		return
	}
	p.mu.Lock()
	if !p.stopped && p.onReply != nil {
		p.onReply(r)
	}
	p.mu.Unlock()
	if r.Code.Terminal() {
		p.done <- r
	}
}

func (c *Client) deliverUnsolicited(r Reply) {
	if c.unsolicited != nil {
		c.unsolicited(r)
	}
}
