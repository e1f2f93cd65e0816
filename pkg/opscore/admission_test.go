package opscore

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// waitEOF waits for the server to close the connection.
func (c *rawConn) waitEOF() {
	c.t.Helper()
	select {
	case <-c.eof:
	case <-time.After(wait):
		c.t.Fatal("the connection was not closed")
	}
}

func TestAllowedNetworks(t *testing.T) {
	h := newTestHandler()
	other := startServer(t, h, WithAllowedNetworks([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}))
	c := dialRaw(t, other)
	line := c.next()
	if !strings.HasPrefix(line, "0 0 f error=fliswarm,") || !strings.Contains(line, "not allowed") {
		t.Errorf("refused connection got %q", line)
	}
	c.waitEOF()
	if n := len(other.Users()); n != 0 {
		t.Errorf("%d users after a refused connection", n)
	}

	h2 := newTestHandler()
	local := startServer(t, h2, WithAllowedNetworks([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}))
	c2 := dialRaw(t, local)
	if line := c2.next(); !strings.Contains(line, "yourUserID=1") {
		t.Errorf("allowed connection got %q", line)
	}
}

func TestMaxUsers(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, h, WithMaxUsers(2))
	a, b := dialRaw(t, s), dialRaw(t, s)
	for _, c := range []*rawConn{a, b} {
		if line := c.next(); !strings.Contains(line, "yourUserID=") {
			t.Fatalf("greeting %q", line)
		}
	}
	// Both are registered: a user is greeted once it is.
	c := dialRaw(t, s)
	var line string
	for line = c.next(); !strings.Contains(line, " f "); line = c.next() {
	}
	if !strings.Contains(line, "too many users") {
		t.Errorf("third user got %q", line)
	}
	c.waitEOF()
}
