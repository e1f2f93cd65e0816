package opscore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/linesession"
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
	sess        *linesession.Session[Reply]
	log         logr.Logger
	unsolicited func(Reply)
	commander   string
	userID      int
	version     string
}

// Dial connects to the actor at addr and reads its greeting (up to the
// `version` line), which gives the client its user id.
func Dial(ctx context.Context, addr string, opts ...ClientOption) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("opscore: dial %s: %w", addr, err)
	}
	c := &Client{log: logr.Discard()}
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

	br := bufio.NewReaderSize(nc, 64<<10)
	err = c.readGreeting(br)
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

	uid := c.userID
	c.sess = linesession.New(nc, linesession.Config[Reply]{
		Decode: func(line []byte) (Reply, int, bool, error) {
			r, err := ParseReply(string(line))
			if err != nil {
				return Reply{}, 0, false, err
			}
			if r.UserID != uid {
				return r, 0, false, nil
			}
			return r, r.CmdID, r.Code.Terminal(), nil
		},
		SequentialIDs: true,
		Inline:        true,
		MaxLineBytes:  maxReplyLine,
		OnUnsolicited: c.deliverUnsolicited,
		OnDiscard:     c.deliverUnsolicited, // late replies to a command given up on
		OnBadLine: func(line []byte, err error) {
			c.log.Info("ignoring a bad reply line", "line", string(line), "error", err.Error())
		},
	})
	go func() { _ = c.sess.Serve(eofReader{br}) }()
	return c, nil
}

// errClosedByActor is why the connection ended when the actor closed it.
var errClosedByActor = errors.New("opscore: connection closed by the actor")

// eofReader reports the end of the stream as errClosedByActor.
type eofReader struct{ r io.Reader }

func (e eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		err = errClosedByActor
	}
	return n, err
}

// readLine reads one line of at most maxReplyLine bytes, without its line
// break.
func readLine(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxReplyLine {
			return "", errors.New("opscore: reply line too long")
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

func (c *Client) readGreeting(br *bufio.Reader) error {
	for {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return errors.New("opscore: connection closed during the greeting")
		}
		if err != nil {
			return fmt.Errorf("opscore: reading the greeting: %w", err)
		}
		r, err := ParseReply(line)
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
}

// UserID returns the user id the actor gave this connection.
func (c *Client) UserID() int { return c.userID }

// Version returns the version the actor announced.
func (c *Client) Version() string { return c.version }

// Done returns a channel closed when the connection is closed.
func (c *Client) Done() <-chan struct{} { return c.sess.Done() }

// Err returns why the connection closed, or nil while it is open.
func (c *Client) Err() error { return c.sess.Err() }

// Close closes the connection; commands still waiting fail.
func (c *Client) Close() error {
	c.sess.Close(ErrClientClosed)
	return nil
}

// Send sends one command (a body such as `talk -n gfa1 status`) with a
// fresh command id and waits for its terminal reply, which it returns.
// onReply, if not nil, is called for every reply of the command, the
// terminal one included, in order, on the client's reading goroutine; it
// is never called after Send has returned. The error is only about the
// transport or ctx: a failed command is a nil error with a final reply
// whose Code is `f` or `!`. A body starting with a number would be read by
// the actor as a second id, and a body may not contain a newline. Replies
// arriving after Send gave up on its command go to the unsolicited
// function.
func (c *Client) Send(ctx context.Context, body string, onReply func(Reply)) (Reply, error) {
	if strings.ContainsAny(body, "\r\n") {
		return Reply{}, errors.New("opscore: a command may not contain a newline")
	}
	call, err := c.sess.Start(ctx, func(dst []byte, id int) []byte {
		if c.commander != "" {
			dst = append(dst, c.commander...)
			dst = append(dst, ' ')
		}
		dst = strconv.AppendInt(dst, int64(id), 10)
		dst = append(dst, ' ')
		dst = append(dst, body...)
		return append(dst, '\n')
	}, onReply)
	if err != nil {
		if ctx.Err() != nil {
			return Reply{}, ctx.Err()
		}
		if cerr := c.sess.Err(); cerr != nil {
			return Reply{}, fmt.Errorf("opscore: send: %w", cerr)
		}
		return Reply{}, fmt.Errorf("opscore: send: %w", err)
	}
	r, err := call.Wait(ctx, 0)
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil && !errors.Is(err, linesession.ErrClosed):
		return Reply{}, ctx.Err()
	default:
		return Reply{}, fmt.Errorf("opscore: command %d: %w", call.ID, c.sess.Err())
	}
}

func (c *Client) deliverUnsolicited(r Reply) {
	if c.unsolicited != nil {
		c.unsolicited(r)
	}
}
