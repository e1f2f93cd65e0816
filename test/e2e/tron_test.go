package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// standInHub plays tron: it records what fliswarm's hub connection sends,
// answers `hub startNubs <actor>` with `:` and then, as tron does, connects
// to the actor's port (from the hub's own address) and sends a command as
// an operator would; each answered command is reported on answered.
type standInHub struct {
	t         *testing.T
	ln        net.Listener
	actorAddr string
	answered  chan string // the command's final line

	mu    sync.Mutex
	lines []string
	conns []net.Conn
}

// startStandInHub listens on 127.0.0.2, a loopback address of its own, so
// that fliswarm can tell tron's connection from the test's.
func startStandInHub(t *testing.T, actorAddr string) *standInHub {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &standInHub{t: t, ln: ln, actorAddr: actorAddr, answered: make(chan string, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.track(c)
			go h.serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

func (h *standInHub) track(c net.Conn) {
	h.mu.Lock()
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}

func (h *standInHub) nubs() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if strings.HasSuffix(l, " hub startNubs fliswarm") {
			n++
		}
	}
	return n
}

func (h *standInHub) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		h.mu.Lock()
		h.lines = append(h.lines, line)
		h.mu.Unlock()
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		fmt.Fprintf(c, "%s %s %s : \n", f[0], f[1], f[2])
		if f[0] == "fliswarm.fliswarm" && f[2] == "hub" && strings.Join(f[3:], " ") == "startNubs fliswarm" {
			go h.connectBack()
		}
	}
}

// connectBack connects to the actor as tron and sends `APO.Jose 5 ping`.
func (h *standInHub) connectBack() {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", h.actorAddr)
	if err != nil {
		h.answered <- "dial: " + err.Error()
		return
	}
	h.track(c)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "APO.Jose 5 ping\n"); err != nil {
		h.answered <- "write: " + err.Error()
		return
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[1] == "5" && strings.ContainsAny(f[2], ":f!") {
			h.answered <- sc.Text()
			return
		}
	}
	h.answered <- fmt.Sprintf("no answer: %v", sc.Err())
}

// waitAnswered waits for tron's command on its connection back to be
// answered `:`.
func (h *standInHub) waitAnswered(t *testing.T, what string) {
	t.Helper()
	select {
	case l := <-h.answered:
		if f := strings.Fields(l); len(f) < 3 || f[1] != "5" || f[2] != ":" {
			t.Fatalf("%s: tron's ping got %q", what, l)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: tron was not asked to connect back, or its command not answered (%d startNubs seen)", what, h.nubs())
	}
}

// TestTronConnectsBack: at every start of fliswarm (the first, after a
// stop, after a kill -9) the hub gets `hub startNubs fliswarm`, and the
// connection it then opens to the actor port is answered; status shows
// both connections.
func TestTronConnectsBack(t *testing.T) {
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, nil)
	hub := startStandInHub(t, e.actor)
	e.writeConfig(func(cfg map[string]any) {
		actor := cfg["actor"].(map[string]any)
		actor["tron_host"] = "127.0.0.2"
		actor["tron_port"] = hub.ln.Addr().(*net.TCPAddr).Port
	})

	e.startDaemon()
	hub.waitAnswered(t, "first start")
	e.eventually(20*time.Second, "status shows both hub connections", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		h := st.Daemon.Hub
		if h == nil || !h.Connected || !h.TronConnected || h.NubsAccepted.IsZero() || h.TronLastConnected.IsZero() {
			return fmt.Errorf("hub status %s", mustJSON(h))
		}
		return nil
	})
	out, _, code := e.run(30*time.Second, "status")
	if code != 0 || !strings.Contains(out, "tron on the actor port: connected") {
		t.Errorf("fliswarm status (exit %d) does not show tron connected:\n%s", code, out)
	}
	c := dialActor(t, e) // an operator from 127.0.0.1 sees the same in the actor's status
	replies, final := send(t, c, "status", 30*time.Second)
	if !strings.Contains(replyLines(replies), "hub=T,127.0.0.2:") || final.Code != ':' {
		t.Errorf("actor status:\n%s", replyLines(replies))
	}
	c.Close()

	e.stopDaemon()
	e.startDaemon()
	hub.waitAnswered(t, "after a stop and start")

	if err := e.daemon.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	e.daemon = nil
	e.startDaemon()
	hub.waitAnswered(t, "after kill -9 and start")
	if n := hub.nubs(); n != 3 {
		t.Errorf("%d startNubs for 3 starts", n)
	}
}
