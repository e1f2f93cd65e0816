package camsim

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
)

// captureConn collects replies in memory, and fails writes past a limit
// like a client that went away.
type captureConn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	limit  int
	closed bool
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.buf.Len()+len(b) > c.limit {
		c.closed = true
		return 0, errors.New("connection closed")
	}
	return c.buf.Write(b)
}

func (c *captureConn) SetWriteDeadline(time.Time) error { return nil }

func (c *captureConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// FuzzHandleLine feeds arbitrary command lines to the dispatcher and checks
// the protocol's promises: every reply is valid JSON with the header
// filled in, and a command gets ">" first and exactly one terminal reply,
// last (sim-hang excepted, and unless the client went away).
func FuzzHandleLine(f *testing.F) {
	for _, s := range []string{
		"1 status", "2 ping", "3 version", "4 help", "expose 0", "5 expose 0 --count 3 --flat",
		"6 expose gfa1n --bias --filename x.fits", "7 expose 1 --filename ../x", "8 temperature -10",
		"9 binning 2 3", "10 sim-flood 3", "11 sim-hang", "12 sim-exit 1", "13 bogus", "14",
		"\x00\xff", "15 expose -- -1", "16 expose 1 -c", "17 temperature --help", "   ",
		"18 binning -1e400", "19 expose \x00\x000 1",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	srv := New(Config{Name: "gfa1", DataDir: dir, Width: 4, Height: 4})
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return // the reader splits lines first
		}
		conn := &captureConn{limit: 1 << 20}
		ss := srv.newSession(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		ss.handleLine(ctx, line)

		id, cmd, perr := clu.ParseCommand(line)
		out := strings.Split(strings.TrimSuffix(conn.buf.String(), "\n"), "\n")
		if perr != nil {
			if conn.buf.Len() != 0 {
				t.Fatalf("empty line %q got replies: %q", line, conn.buf.String())
			}
			return
		}
		var rs []clu.Reply
		for _, l := range out {
			r, err := clu.ParseReply([]byte(l))
			if err != nil {
				t.Fatalf("line %q: bad reply %q: %v", line, l, err)
			}
			if r.Header.CommandID != id || r.Header.Sender != "gfa1" || r.Header.CommanderID != ss.commanderID {
				t.Fatalf("line %q: bad header %+v", line, r.Header)
			}
			rs = append(rs, r)
		}
		if rs[0].Header.MessageCode != ">" || !rs[0].Header.Internal || len(rs[0].Data) != 0 {
			t.Fatalf("line %q: first reply %+v", line, rs[0])
		}
		terminals := 0
		for _, r := range rs {
			if clu.IsTerminal(r.Header.MessageCode) {
				terminals++
			}
		}
		hang := strings.Fields(cmd)
		if len(hang) == 1 && hang[0] == "sim-hang" || conn.closed {
			return
		}
		if terminals != 1 || !clu.IsTerminal(rs[len(rs)-1].Header.MessageCode) {
			t.Fatalf("line %q: codes %v, want one terminal reply, last", line, codes(rs))
		}
	})
}
