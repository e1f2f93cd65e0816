package actor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// Tron client defaults.
const (
	tronDialTimeout    = 5 * time.Second
	tronWriteTimeout   = 10 * time.Second
	tronInitialBackoff = time.Second
	tronMaxBackoff     = time.Minute
	tronMaxLine        = 1 << 20
)

var (
	// ErrHubNotConnected is returned by TronClient.Command when there is no
	// connection to the hub.
	ErrHubNotConnected = errors.New("not connected to the tron hub")
	// ErrHubDisconnected is returned by TronClient.Command when the hub
	// connection dropped before the command ended.
	ErrHubDisconnected = errors.New("tron hub connection lost")
)

// HubReply is one line the tron hub sends a commander:
// `<commander> <mid> <actor> <code> <keywords>`.
type HubReply struct {
	// Commander is the commander the reply is for (ours for replies to our
	// commands; ".actor" and others for broadcasts).
	Commander string
	// MID is the command's id as the commander numbered it.
	MID int
	// Actor is the actor (or "hub") that replied.
	Actor string
	// Code is the message code.
	Code opscore.Code
	// Keywords are the parsed keywords; nil when the keyword part could
	// not be parsed (Line still has it).
	Keywords []opscore.Keyword
	// Line is the line as received, without its newline.
	Line string
}

// Get returns the first keyword called name.
func (r HubReply) Get(name string) (opscore.Keyword, bool) {
	for _, k := range r.Keywords {
		if k.Name == name {
			return k, true
		}
	}
	return opscore.Keyword{}, false
}

// ParseHubReply parses one line from the hub. Only the header must be
// well formed: a keyword part that opscore cannot parse leaves Keywords
// nil, so that the reply's code still ends the command it belongs to.
func ParseHubReply(line string) (HubReply, error) {
	line = strings.TrimRight(line, "\r\n")
	r := HubReply{Line: line}
	rest := strings.TrimLeft(line, " \t")
	var word string
	next := func() string {
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			word, rest = rest, ""
		} else {
			word, rest = rest[:i], strings.TrimLeft(rest[i:], " \t")
		}
		return word
	}
	if r.Commander = next(); r.Commander == "" {
		return HubReply{}, errors.New("tron: empty reply line")
	}
	mid := next()
	n, err := strconv.Atoi(mid)
	if err != nil || n < 0 {
		return HubReply{}, fmt.Errorf("tron: bad command id %q", mid)
	}
	r.MID = n
	if r.Actor = next(); r.Actor == "" {
		return HubReply{}, errors.New("tron: reply has no actor")
	}
	code := next()
	if len(code) != 1 || !opscore.Code(code[0]).Valid() {
		return HubReply{}, fmt.Errorf("tron: bad reply code %q", code)
	}
	r.Code = opscore.Code(code[0])
	if kws, err := opscore.ParseKeywords(rest); err == nil {
		r.Keywords = kws
	}
	return r, nil
}

// TronClient is fliswarm's connection to the tron hub, for sending commands
// to other actors. Run keeps it connected, retrying with backoff (and
// logging) while the hub is unreachable; nothing else waits for it.
type TronClient struct {
	addr      string
	commander string
	log       logr.Logger

	running atomic.Bool

	wmu sync.Mutex // one line at a time

	mu      sync.Mutex
	conn    net.Conn // nil when not connected
	nextMID int
	pending map[int]*hubPending
}

type hubPending struct {
	done  chan struct{}
	reply HubReply
	err   error
}

// NewTronClient returns a client for the hub at addr (host:port) that
// sends commands as commander (e.g. "fliswarm.fliswarm"). Call Run.
func NewTronClient(addr, commander string, log logr.Logger) *TronClient {
	if log.GetSink() == nil {
		log = logr.Discard()
	}
	return &TronClient{
		addr:      addr,
		commander: commander,
		log:       log.WithValues("hub", addr),
		pending:   map[int]*hubPending{},
	}
}

// Connected reports whether the hub connection is up.
func (t *TronClient) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.conn != nil
}

// Run keeps a connection to the hub until ctx ends, then returns nil.
func (t *TronClient) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("tron: Run already active")
	}
	defer t.running.Store(false)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     tronInitialBackoff,
		RandomizationFactor: backoff.DefaultRandomizationFactor,
		Multiplier:          2,
		MaxInterval:         tronMaxBackoff,
	}
	bo.Reset()
	warned := false
	for {
		d := net.Dialer{Timeout: tronDialTimeout}
		conn, err := d.DialContext(ctx, "tcp", t.addr)
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return nil
		}
		if err != nil {
			wait := bo.NextBackOff()
			if !warned {
				t.log.Error(err, "cannot reach the tron hub; fliswarm runs without it and retries", "retryIn", wait.Round(time.Millisecond).String())
				warned = true
			} else {
				t.log.V(1).Info("tron hub still unreachable", "err", err.Error(), "retryIn", wait.Round(time.Millisecond).String())
			}
			if !sleepCtx(ctx, wait) {
				return nil
			}
			continue
		}
		bo.Reset()
		warned = false
		t.log.Info("connected to the tron hub")
		err = t.serve(ctx, conn)
		if ctx.Err() != nil {
			return nil
		}
		t.log.Error(err, "tron hub connection lost; reconnecting")
		if !sleepCtx(ctx, bo.NextBackOff()) {
			return nil
		}
	}
}

// serve reads replies until the connection ends, then fails every command
// still waiting.
func (t *TronClient) serve(ctx context.Context, conn net.Conn) error {
	t.mu.Lock()
	t.conn = conn
	t.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 0, 64<<10), tronMaxLine)
	for sc.Scan() {
		r, err := ParseHubReply(sc.Text())
		if err != nil {
			t.log.V(2).Info("ignoring a hub line", "line", sc.Text(), "err", err.Error())
			continue
		}
		t.dispatch(r)
	}
	err := sc.Err()
	if err == nil {
		err = errors.New("closed by the hub")
	}
	conn.Close()

	t.mu.Lock()
	t.conn = nil
	for mid, p := range t.pending {
		p.err = fmt.Errorf("%w: %w", ErrHubDisconnected, err)
		close(p.done)
		delete(t.pending, mid)
	}
	t.mu.Unlock()
	return err
}

// dispatch ends the command a terminal reply belongs to.
func (t *TronClient) dispatch(r HubReply) {
	if r.Commander != t.commander || !r.Code.Terminal() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pending[r.MID]; p != nil {
		p.reply = r
		close(p.done)
		delete(t.pending, r.MID)
	}
}

// Command sends `<commander> <mid> <target> <command>` to the hub and waits
// for the terminal reply with that mid, or until ctx ends or the connection
// drops. It fails at once with ErrHubNotConnected when the hub is not
// connected.
func (t *TronClient) Command(ctx context.Context, target, command string) (HubReply, error) {
	if target == "" || strings.ContainsAny(target, " \t\r\n") {
		return HubReply{}, fmt.Errorf("tron: bad actor name %q", target)
	}
	if strings.ContainsAny(command, "\r\n") {
		return HubReply{}, errors.New("tron: a command may not contain a line break")
	}
	t.mu.Lock()
	conn := t.conn
	if conn == nil {
		t.mu.Unlock()
		return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, ErrHubNotConnected)
	}
	mid := t.nextMID
	for {
		mid++
		if mid <= 0 || mid > 1<<31-1 {
			mid = 1
		}
		if t.pending[mid] == nil {
			break
		}
	}
	t.nextMID = mid
	p := &hubPending{done: make(chan struct{})}
	t.pending[mid] = p
	t.mu.Unlock()
	forget := func() {
		t.mu.Lock()
		if t.pending[mid] == p {
			delete(t.pending, mid)
		}
		t.mu.Unlock()
	}

	line := fmt.Sprintf("%s %d %s %s\n", t.commander, mid, target, command)
	t.wmu.Lock()
	_ = conn.SetWriteDeadline(time.Now().Add(tronWriteTimeout))
	_, err := conn.Write([]byte(line))
	t.wmu.Unlock()
	if err != nil {
		forget()
		conn.Close() // the reader notices and reconnects
		return HubReply{}, fmt.Errorf("tron: sending %s %s: %w", target, command, err)
	}
	t.log.V(1).Info("sent command", "mid", mid, "actor", target, "command", command)

	select {
	case <-p.done:
		if p.err != nil {
			return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, p.err)
		}
		return p.reply, nil
	case <-ctx.Done():
		forget()
		return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, ctx.Err())
	}
}
