package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// The relay's end-to-end tests (issue 9): a partitioned camera does not
// hold commands, a user's replies go only to that user, and a flood
// reaches a reading client complete while a stuck client is dropped.

// relayEnv is actorEnv with the configuration mutated first.
func relayEnv(t *testing.T, mutate func(cfg map[string]any)) (*testbed.Bed, *env) {
	t.Helper()
	bed := testbed.Ensure(t)
	e := newEnv(t, bed, mutate)
	converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	var names []string
	for _, n := range bed.Nodes {
		names = append(names, n.Name)
	}
	waitConnected(t, e, names...)
	return bed, e
}

// rawUser is a user connection read line by line, counting flood lines
// (`text=<node>,"flood N"`) apart from the others.
type rawUser struct {
	conn   net.Conn
	uid    string
	flood  atomic.Int64
	mu     sync.Mutex
	others []string
	done   chan struct{}
	err    error
}

// dialRaw connects and reads the greeting; unless read is false, a
// goroutine then reads every line as it comes.
func dialRaw(t *testing.T, e *env, read bool) *rawUser {
	t.Helper()
	conn, err := net.DialTimeout("tcp", e.actor, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUser{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("greeting: %v", err)
		}
		if strings.Contains(l, "yourUserID=") {
			u.uid = strings.Fields(l)[0]
		}
		if strings.Contains(l, "version=") {
			break
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	if !read {
		close(u.done)
		return u
	}
	go func() {
		defer close(u.done)
		for {
			l, err := br.ReadSlice('\n')
			if err != nil {
				u.err = err
				return
			}
			if bytes.Contains(l, []byte(`,"flood `)) {
				u.flood.Add(1)
				continue
			}
			u.mu.Lock()
			u.others = append(u.others, strings.TrimSuffix(string(l), "\n"))
			u.mu.Unlock()
		}
	}()
	return u
}

// final returns the terminal line of command id, if it came.
func (u *rawUser) final(id int) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.others {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == u.uid && f[1] == fmt.Sprint(id) && (f[2] == ":" || f[2] == "f" || f[2] == "!") {
			return l, true
		}
	}
	return "", false
}

func (u *rawUser) waitFinal(t *testing.T, id int, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if l, ok := u.final(id); ok {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("user %s: command %d did not end within %v (read error %v)", u.uid, id, timeout, u.err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayPartitionedCamera: during a partition of one node, talk to it
// ends within about 10 s (the camera is seen silent and its command ends
// with a warning naming it), talk status to all ends for the others at
// their normal speed, and after heal talk works again within about 2 s of
// the camera's port answering.
func TestRelayPartitionedCamera(t *testing.T) {
	bed, e := relayEnv(t, nil)
	c := dialActor(t, e)
	victim := bed.Nodes[0]
	addr := net.JoinHostPort(victim.IP, "19995")

	// A normal talk status first, for the normal speed.
	start := time.Now()
	_, final := send(t, c, "talk status", time.Minute)
	normal := time.Since(start)
	if final.Code != opscore.Done {
		t.Fatalf("talk status before the partition: %s", final.Line)
	}

	held := sendSeen(t, c, "talk -n "+victim.Name+" expose 30", 2*time.Minute, integrating(victim.Name))
	bed.Partition(t, victim.Name)
	partitioned := time.Now()

	select {
	case o := <-held:
		if d := time.Since(partitioned); d > 12*time.Second {
			t.Errorf("talk to the partitioned camera ended %v after the partition", d)
		}
		if o.err != nil {
			t.Errorf("talk to the partitioned camera: %v", o.err)
		}
		// A warning naming it (the exposure's own relayed replies name it
		// too, so only a warning counts).
		warned := false
		for _, r := range append(o.lines, o.final) {
			warned = warned || r.Code == opscore.Warning && strings.Contains(r.Line, victim.Name)
		}
		if !warned {
			t.Errorf("no warning naming %s:\n%s%s", victim.Name, replyLines(o.lines), o.final.Line)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("talk to the partitioned camera still running 20 s after the partition")
	}

	// The others answer at their normal speed; the victim is skipped at once.
	start = time.Now()
	lines, final := send(t, c, "talk status", time.Minute)
	took := time.Since(start)
	if final.Code != opscore.Done {
		t.Errorf("talk status during the partition: %s\n%s", final.Line, replyLines(lines))
	}
	if took > normal+2*time.Second {
		t.Errorf("talk status during the partition took %v (normal %v)", took, normal)
	}
	if !strings.Contains(replyLines(lines), "Failed connecting to "+victim.Name) {
		t.Errorf("talk status does not skip %s:\n%s", victim.Name, replyLines(lines))
	}
	if st, err := e.status(); err == nil {
		for _, n := range st.Nodes {
			if n.Name == victim.Name && n.DeviceConnected {
				t.Errorf("status says %s's camera is connected during the partition", n.Name)
			}
		}
	}

	bed.Heal(t, victim.Name)
	waitPort(t, addr, time.Minute)
	answering := time.Now()
	e.eventually(10*time.Second, "talk to the healed camera", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r, err := c.Send(ctx, "talk -n "+victim.Name+" ping", nil)
		if err != nil {
			return err
		}
		if r.Code != opscore.Done {
			return fmt.Errorf("%s", r.Line)
		}
		return nil
	})
	if d := time.Since(answering); d > 3*time.Second {
		t.Errorf("talk worked again %v after the camera's port answered", d)
	}
}

// TestRelayGoneUserFloodReachesNobody: a user that disconnects during a
// 300,000-line flood causes no line of it to reach any other user.
func TestRelayGoneUserFloodReachesNobody(t *testing.T) {
	bed, e := relayEnv(t, nil)
	node := bed.Nodes[0].Name
	others := []*rawUser{dialRaw(t, e, true), dialRaw(t, e, true)}
	leaver := dialRaw(t, e, true)
	fmt.Fprintf(leaver.conn, "1 talk -n %s sim-flood 300000\n", node)
	deadline := time.Now().Add(time.Minute)
	for leaver.flood.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("the flood did not start: %v", leaver.err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	leaver.conn.Close()

	// The others keep working; then wait for the camera to be done
	// flooding.
	for i, u := range others {
		fmt.Fprintf(u.conn, "1 ping\n")
		if l := u.waitFinal(t, 1, 10*time.Second); !strings.HasSuffix(l, "text=Pong.") {
			t.Errorf("user %d ping: %q", i, l)
		}
	}
	// 300,000 lines take well under this at the camera's speed. A sleep:
	// nothing a test can see marks the end of a flood whose user is gone
	// (see leaverFlood in faults_actor_test.go).
	time.Sleep(5 * time.Second)
	for i, u := range others {
		fmt.Fprintf(u.conn, "2 talk -n %s ping\n", node)
		u.waitFinal(t, 2, time.Minute)
		if n := u.flood.Load(); n != 0 {
			t.Errorf("user %d received %d lines of another user's flood", i, n)
		}
	}
}

// TestRelayFloodToReadingAndStuckClients: a 1,000,000-line flood reaches a
// client reading line by line complete, five times in a row, while a
// client that never reads is dropped after the stall time and a third
// client's ping answers throughout.
//
// The stall time is shortened through the configuration (actor.stall_timeout,
// seconds); the daemon must pass it to the opscore server.
func TestRelayFloodToReadingAndStuckClients(t *testing.T) {
	const stall = 5 * time.Second
	bed, e := relayEnv(t, func(cfg map[string]any) {
		cfg["actor"].(map[string]any)["stall_timeout"] = stall.Seconds()
	})
	node := bed.Nodes[0].Name
	// The stuck client asks for a flood (from another camera when the bed
	// has one) and never reads it: its backlog stops draining at once.
	stuck := dialRaw(t, e, false)
	stuckNode := bed.Nodes[len(bed.Nodes)-1].Name
	fmt.Fprintf(stuck.conn, "1 talk -n %s sim-flood 1000000\n", stuckNode)
	stuckSince := time.Now()
	pinger := dialRaw(t, e, true)

	pings := make(chan error, 1)
	stopPing := make(chan struct{})
	go func() {
		id := 0
		for {
			select {
			case <-stopPing:
				pings <- nil
				return
			case <-time.After(500 * time.Millisecond):
			}
			id++
			fmt.Fprintf(pinger.conn, "%d ping\n", id)
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, ok := pinger.final(id); ok {
					break
				}
				if time.Now().After(deadline) {
					pings <- fmt.Errorf("ping %d not answered within 5 s", id)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}()

	for run := 1; run <= 5; run++ {
		reader := dialRaw(t, e, true)
		fmt.Fprintf(reader.conn, "1 talk -n %s sim-flood 1000000\n", node)
		l := reader.waitFinal(t, 1, 5*time.Minute)
		if n := reader.flood.Load(); n != 1_000_000 || !strings.Contains(l, " 1 : ") {
			t.Errorf("run %d: %d of 1000000 flood lines, final %q", run, n, l)
		}
		reader.conn.Close()
		if run == 1 {
			// Meanwhile the stuck client, which never read, was dropped.
			// Reading from it is progress, so look only once it has been
			// stuck for well over the stall time.
			time.Sleep(time.Until(stuckSince.Add(3 * stall)))
			_ = stuck.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1<<20)
			var err error
			for err == nil {
				_, err = stuck.conn.Read(buf) // drains what was sent before the drop
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("the stuck client was not dropped (%v after it stopped reading)", time.Since(stuckSince))
			}
		}
	}
	close(stopPing)
	if err := <-pings; err != nil {
		t.Error(err)
	}
}
