package actor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/sdss/fliswarm/pkg/linesession"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// Tron client defaults.
const (
	tronDialTimeout    = 5 * time.Second
	tronWriteTimeout   = 10 * time.Second
	tronInitialBackoff = time.Second
	tronMaxBackoff     = time.Minute
	tronMaxLine        = 1 << 20
	// startNubsRetry is the first pause before asking the hub again to
	// connect back after it refused; it doubles up to tronMaxBackoff.
	startNubsRetry = 5 * time.Second
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
	keeper    *linesession.Keeper

	running atomic.Bool

	nubs      string        // the actor tron is asked to connect to ("" for none)
	nubsRetry time.Duration // first pause before asking again after a refusal

	mu          sync.Mutex
	sess        *linesession.Session[HubReply] // nil when not connected
	connectedAt time.Time                      // when the current connection was made
	nubsAt      time.Time                      // when the hub last accepted startNubs
}

// StartNubs makes the client ask the hub, on every connection it makes,
// to connect back to the actor called name (`hub startNubs <name>`, as a
// CLU legacy actor does at start). A refusal is logged and asked again,
// after a pause that doubles, while the connection lasts; a connection
// that drops asks again once it is back. Call it before Run.
func (t *TronClient) StartNubs(name string) {
	t.nubs = name
	if t.nubsRetry <= 0 {
		t.nubsRetry = startNubsRetry
	}
}

// HubState is what status tells of the hub connection.
type HubState struct {
	// Addr is the hub's address (host:port).
	Addr string
	// Connected says whether the connection to the hub is up.
	Connected bool
	// Since is when the connection up now was made (zero when down).
	Since time.Time
	// NubsAccepted is when the hub last accepted `startNubs` (zero if
	// never).
	NubsAccepted time.Time
}

// State returns the connection's state.
func (t *TronClient) State() HubState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return HubState{Addr: t.addr, Connected: t.sess != nil, Since: t.connectedAt, NubsAccepted: t.nubsAt}
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
		keeper:    linesession.NewKeeper(tronInitialBackoff, tronMaxBackoff),
	}
}

// Connected reports whether the hub connection is up.
func (t *TronClient) Connected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sess != nil
}

// Run keeps a connection to the hub until ctx ends, then returns nil.
func (t *TronClient) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("tron: Run already active")
	}
	defer t.running.Store(false)
	warned := false
	dial := func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{Timeout: tronDialTimeout}
		return d.DialContext(ctx, "tcp", t.addr)
	}
	failed := func(err error, wait time.Duration) {
		if !warned {
			t.log.Error(err, "cannot reach the tron hub; fliswarm runs without it and retries", "retryIn", wait.Round(time.Millisecond).String())
			warned = true
		} else {
			t.log.V(1).Info("tron hub still unreachable", "err", err.Error(), "retryIn", wait.Round(time.Millisecond).String())
		}
	}
	serve := func(ctx context.Context, conn net.Conn) bool {
		warned = false
		t.log.Info("connected to the tron hub")
		err := t.serve(ctx, conn)
		if ctx.Err() == nil {
			t.log.Error(err, "tron hub connection lost; reconnecting")
		}
		return true
	}
	t.keeper.Run(ctx, dial, serve, failed)
	return nil
}

// serve reads replies until the connection ends; every command still
// waiting then fails.
func (t *TronClient) serve(ctx context.Context, conn net.Conn) error {
	s := linesession.New(conn, linesession.Config[HubReply]{
		Decode:        t.decode,
		SequentialIDs: true,
		Inline:        true,
		MaxLineBytes:  tronMaxLine,
		WriteTimeout:  tronWriteTimeout,
		OnBadLine: func(line []byte, err error) {
			t.log.V(2).Info("ignoring a hub line", "line", string(line), "err", err.Error())
		},
	})
	t.mu.Lock()
	t.sess = s
	t.connectedAt = time.Now()
	t.mu.Unlock()
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(ctx, func() { s.Close(ctx.Err()) })
	defer stop()
	var nubs sync.WaitGroup
	if t.nubs != "" {
		nubs.Go(func() { t.askToConnectBack(sctx) })
	}
	err := s.Serve(nil)
	cancel()
	nubs.Wait()
	t.mu.Lock()
	t.sess = nil
	t.connectedAt = time.Time{}
	t.mu.Unlock()
	if errors.Is(err, io.EOF) {
		err = errors.New("closed by the hub")
	}
	return err
}

// askToConnectBack sends `hub startNubs <actor>` on the connection just
// made, and again after a pause while the hub refuses it, until it is
// accepted or the connection (ctx) ends.
func (t *TronClient) askToConnectBack(ctx context.Context) {
	wait := t.nubsRetry
	for {
		t.log.Info("asking the tron hub to connect back", "command", "hub startNubs "+t.nubs)
		r, err := t.Command(ctx, "hub", "startNubs "+t.nubs)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// The connection dropped: the next one asks again.
			t.log.Error(err, "startNubs not answered; asking again on the next connection to the hub")
			return
		case r.Code == opscore.Done:
			t.mu.Lock()
			t.nubsAt = time.Now()
			t.mu.Unlock()
			t.log.Info("the tron hub accepted startNubs", "actor", t.nubs)
			return
		}
		t.log.Error(errors.New(r.Line), "the tron hub refused startNubs; asking again", "retryIn", wait.String())
		tm := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C:
		}
		wait = min(2*wait, tronMaxBackoff)
	}
}

// decode routes the replies to our commands by their mid; the others
// (broadcasts, other commanders) belong to no command of ours.
func (t *TronClient) decode(line []byte) (HubReply, int, bool, error) {
	r, err := ParseHubReply(string(line))
	if err != nil {
		return HubReply{}, 0, false, err
	}
	if r.Commander != t.commander {
		return r, 0, false, nil
	}
	return r, r.MID, r.Code.Terminal(), nil
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
	s := t.sess
	t.mu.Unlock()
	if s == nil {
		return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, ErrHubNotConnected)
	}
	call, err := s.Start(ctx, func(dst []byte, mid int) []byte {
		dst = append(dst, t.commander...)
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(mid), 10)
		dst = append(dst, ' ')
		dst = append(dst, target...)
		dst = append(dst, ' ')
		dst = append(dst, command...)
		return append(dst, '\n')
	}, nil)
	if errors.Is(err, linesession.ErrClosed) {
		return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, ErrHubNotConnected)
	}
	if err != nil {
		return HubReply{}, fmt.Errorf("tron: sending %s %s: %w", target, command, err)
	}
	t.log.V(1).Info("sent command", "mid", call.ID, "actor", target, "command", command)
	r, err := call.Wait(ctx, 0)
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, linesession.ErrClosed):
		return HubReply{}, fmt.Errorf("tron: %s %s: %w: %w", target, command, ErrHubDisconnected, err)
	default:
		return HubReply{}, fmt.Errorf("tron: %s %s: %w", target, command, err)
	}
}
