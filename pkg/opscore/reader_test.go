package opscore

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sdss/fliswarm/pkg/internal/loglimit"
)

func TestBadLines(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)

	c.send("\n   \n\r\n") // ignored
	c.send("12 talk \"unterminated\n")
	c.expect(`1 12 f error=fliswarm,"unterminated double quote"`)
	c.send("APO.Jose 13\n")
	c.expect(`1 13 f error=fliswarm,"no command given"`)
	c.send("14 \x00\x01\xfe\xff junk\n")
	c.expect(`1 14 f error=fliswarm,"command line is not valid UTF-8"`)
	c.send("\x00\x01\x02\x03\n")
	c.expect(`1 0 f error=fliswarm,"command line contains control characters"`)
	c.send("15 ping\n")
	c.expect("1 15 > ", "1 15 : text=Pong.")
}

func TestLongLine(t *testing.T) {
	s := startServer(t, newTestHandler())
	c := greeted(t, s, 1, 1)

	// Far over the limit: discarded in pieces.
	c.send("9 echo " + strings.Repeat("x", 200<<10) + "\n")
	c.expect(`1 9 f error=fliswarm,"command line longer than 65536 bytes"`)
	// Exactly at the limit is fine; one more byte is not.
	body := "echo " + strings.Repeat("y", DefaultMaxLineLength-len("10 echo "))
	c.send("10 " + body + "\n")
	c.expect("1 10 > ", "1 10 i args="+strings.Repeat("y", DefaultMaxLineLength-len("10 echo ")), "1 10 : ")
	c.send("11 " + body + "y\r\n")
	c.expect(`1 11 f error=fliswarm,"command line longer than 65536 bytes"`)
	c.send("12 " + body + "yy\n")
	c.expect(`1 12 f error=fliswarm,"command line longer than 65536 bytes"`)
	c.send("13 ping\n")
	c.expect("1 13 > ", "1 13 : text=Pong.")
}

func TestSmallMaxLine(t *testing.T) {
	s := startServer(t, newTestHandler(), WithMaxLineLength(32))
	c := greeted(t, s, 1, 1)
	c.send("APO.Jose 77 " + strings.Repeat("z", 100) + "\n")
	c.expect(`1 77 f error=fliswarm,"command line longer than 32 bytes"`)
	c.send("78 ping\n")
	c.expect("1 78 > ", "1 78 : text=Pong.")
}

// TestBadLinesLogRateLimited: a client sending garbage gets a failure for
// every line, but the log grows by a few lines only, the next one saying
// how many were suppressed.
func TestBadLinesLogRateLimited(t *testing.T) {
	log, logged := captureLog()
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := startServer(t, newTestHandler(), WithLogger(log),
		func(s *Server) { s.badLog = loglimit.New(badLogEvery, badLogBurst, clock) })
	c := greeted(t, s, 1, 1)
	const n = 1000
	c.send(strings.Repeat("7 x \"open\n", n))
	for range n {
		if l := c.next(); l != `1 7 f error=fliswarm,"unterminated double quote"` {
			t.Fatalf("got %q", l)
		}
	}
	if got := len(logged.all("bad command line")); got != badLogBurst {
		t.Fatalf("%d lines logged for %d bad lines, want %d", got, n, badLogBurst)
	}
	mu.Lock()
	now = now.Add(badLogEvery)
	mu.Unlock()
	c.send("8 x \"open\n")
	c.expect(`1 8 f error=fliswarm,"unterminated double quote"`)
	lines := logged.all("bad command line")
	if len(lines) != badLogBurst+1 || lines[badLogBurst].kv["suppressed"] != strconv.Itoa(n-badLogBurst) {
		t.Fatalf("log lines %+v, want the last one with suppressed=%d", lines, n-badLogBurst)
	}
}

func TestTooManyCommands(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h, WithMaxCommands(2))
	c := greeted(t, s, 1, 1)
	c.send("1 block\n2 block\n3 block\n")
	got := []string{c.next(), c.next(), c.next()}
	want := []string{"1 1 > ", "1 2 > ", `1 3 f error=fliswarm,"too many commands running (at most 2)"`}
	if !cmp.Equal(sorted(got), sorted(want)) {
		t.Fatalf("got %q, want %q in any order", got, want)
	}
	close(h.release)
	if got := sorted([]string{c.next(), c.next()}); !cmp.Equal(got, []string{"1 1 : ", "1 2 : "}) {
		t.Errorf("got %q", got)
	}
}
