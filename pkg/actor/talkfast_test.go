package actor

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// TryStart takes the common talk (one connected camera, nothing to warn
// about) and relays it to its end; anything else it leaves to Handle
// without writing a line.
func TestTryStartTakesOnlyTheCommonTalk(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	h.cams["fvc"].stop()
	h.waitDevice("fvc", false)
	run := func(body string) (bool, []string, *opscore.Command) {
		l, err := opscore.ParseLine("1 " + body)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var lines []string
		cmd := opscore.NewCommand(l, 1, func(line string) {
			mu.Lock()
			lines = append(lines, stripHeader(line))
			mu.Unlock()
		})
		started := h.actor.TryStart(h.ctx, cmd)
		if started {
			// The end is written when the relay's batch is flushed, a
			// moment after the command is marked ended.
			waitUntil(t, body+" ended", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(lines) > 0 && lines[len(lines)-1] == ": "
			})
		}
		mu.Lock()
		defer mu.Unlock()
		return started, lines, cmd
	}
	started, lines, cmd := run("talk -n gfa1 ping")
	if !started || cmd.Status() != opscore.Done || len(lines) == 0 || lines[len(lines)-1] != ": " {
		t.Errorf("talk -n gfa1 ping: started %v, status %q, lines %q", started, cmd.Status(), lines)
	}
	for _, body := range []string{
		"talk ping",                // every camera
		"talk -n gfa1,gfa2 ping",   // two cameras
		"talk -n gfa1,nosuch ping", // a warning for nosuch
		"talk -n fvc ping",         // not connected: talk says so
		"talk -n gfa1 --help",
		"talk -n gfa1",
		"talk --bogus=",
		"status",
	} {
		if started, lines, _ := run(body); started || len(lines) > 0 {
			t.Errorf("%s: started %v, wrote %q; want neither", body, started, lines)
		}
	}
}

// One user's replies stay in order per command while the queued path (a
// flood that keeps the user's writer busy) and the direct path (short
// talks ending while the writer is idle) interleave.
func TestOrderPerUserWithFloodAndPings(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n, pings = 30_000, 40
	fmt.Fprintf(conn, "1 talk -n gfa1 sim-flood %d\n", n)
	go func() {
		for i := range pings {
			fmt.Fprintf(conn, "%d talk -n gfa2 ping\n", i+2)
			time.Sleep(time.Millisecond) // spread over the flood
		}
	}()
	br := bufio.NewReader(conn)
	type state struct {
		lines int
		ended bool
	}
	cmds := map[int]*state{}
	next, ended := 1, 0
	conn.SetReadDeadline(time.Now().Add(2 * waitFor))
	for ended < pings+1 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d flood lines and %d ends: %v", next-1, ended, err)
		}
		f := strings.Fields(l)
		if len(f) < 3 || f[0] == "0" {
			continue
		}
		id, _ := strconv.Atoi(f[1])
		if id == 0 {
			continue // the greeting
		}
		st := cmds[id]
		if st == nil {
			st = &state{}
			cmds[id] = st
		}
		code := f[2]
		switch {
		case st.ended:
			t.Fatalf("command %d: %q after its end", id, l)
		case st.lines == 0 && code != ">":
			t.Fatalf("command %d began with %q", id, l)
		case code == ":" || code == "f":
			st.ended = true
			ended++
			if code == "f" {
				t.Errorf("command %d failed: %q", id, l)
			}
		}
		st.lines++
		if i := strings.Index(l, `"flood `); i >= 0 {
			k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(l[i+7:]), `"`))
			if id != 1 || k != next {
				t.Fatalf("flood line %d to command %d, want %d to 1", k, id, next)
			}
			next++
		}
	}
	if next-1 != n {
		t.Errorf("%d of %d flood lines", next-1, n)
	}
	if len(cmds) != pings+1 {
		t.Errorf("%d commands answered, want %d", len(cmds), pings+1)
	}
}

// A user who reads nothing while its flood is relayed holds up neither the
// camera's reader nor another user of the same camera: the other user's
// talks answer, the camera's whole flood is read, and the slow user later
// gets all of it, in order.
func TestSlowUserHoldsUpNobody(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	slowConn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	// Ten megabytes: far more than the sockets hold while nobody reads (a
	// receive buffer set small would leave TCP a window too small to catch
	// up quickly afterwards).
	const n = 300_000
	fmt.Fprintf(slowConn, "1 talk -n gfa1 sim-flood %d\n", n)

	other := h.dial()
	cam := h.actor.device("gfa1")
	waitUntil(t, "the flood under way at the camera", func() bool { return cam.InFlight() > 0 })
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		final, err := other.Send(ctx, "talk -n gfa1 ping", nil)
		cancel()
		if err != nil || final.Code != opscore.Done {
			t.Fatalf("ping %d while the slow user reads nothing: %v %q", i, err, final.Line)
		}
	}
	// The camera's reader got through the whole flood, the slow user
	// still reading nothing.
	waitUntil(t, "the flood read from the camera", func() bool { return cam.InFlight() == 0 })

	br := bufio.NewReaderSize(slowConn, 64<<10)
	slowConn.SetReadDeadline(time.Now().Add(2 * waitFor))
	next := 1
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d flood lines: %v", next-1, err)
		}
		if i := strings.Index(l, `"flood `); i >= 0 {
			k, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(l[i+7:]), `"`))
			if k != next {
				t.Fatalf("flood line %d, want %d", k, next)
			}
			next++
		}
		if strings.Contains(l, " 1 : ") || strings.Contains(l, " 1 f ") {
			break
		}
	}
	if next-1 != n {
		t.Errorf("the slow user got %d of %d flood lines", next-1, n)
	}
}
