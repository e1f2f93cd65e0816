package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// The matrix's faults on the actor port: bad input, load, and users that
// leave or stop reading in the middle of a flood.

// malformed sends n lines no parser can take on one connection: each gets
// a failure reply, the connection stays up, and the log does not grow a
// line per bad line.
func (m *matrix) malformed(n int) error {
	logBefore := infoLines(m.e.log())
	conn, err := net.DialTimeout("tcp", m.e.actor, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	bad := []string{`"unterminated quote`, "\x01\x02\x03", "12 34 56 ' '' '''", "talk -n", "nosuchverb --x", `status "a`}
	go func() {
		w := bufio.NewWriter(conn)
		for i := range n {
			fmt.Fprintf(w, "%d %s\n", i+1, bad[i%len(bad)])
		}
		w.Flush()
	}()
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	sc := bufio.NewScanner(conn)
	failures := 0
	for failures < n && sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[2] == "f" && f[0] != "0" {
			failures++
		}
	}
	if failures < n {
		m.unanswered.Add(int64(n - failures))
		return fmt.Errorf("%d of %d malformed lines got a failure reply (%v)", failures, n, sc.Err())
	}
	fmt.Fprintf(conn, "9999 ping\n")
	for sc.Scan() {
		if strings.Contains(sc.Text(), " 9999 : ") {
			break
		}
	}
	if sc.Err() != nil {
		return fmt.Errorf("the connection did not stay up: %v", sc.Err())
	}
	grew := infoLines(m.e.log()) - logBefore
	m.note("%d failure replies, log grew %d lines (debug lines aside)", failures, grew)
	if grew > 100 {
		return fmt.Errorf("the log grew %d lines for %d bad lines", grew, n)
	}
	return nil
}

// infoLines counts the log lines above debug level (the test daemon logs
// every command at debug level; a production daemon does not).
func infoLines(log string) int {
	n := 0
	for l := range strings.Lines(log) {
		if !strings.Contains(l, "\tDEBUG\t") {
			n++
		}
	}
	return n
}

// concurrent runs clients users at once, each sending commands `talk`
// commands one after another; every one must end.
func (m *matrix) concurrent(clients, commands int) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ended, failed := 0, 0
	for i := range clients {
		wg.Go(func() {
			u := dialRawQuiet(m.e)
			if u == nil {
				mu.Lock()
				failed += commands
				mu.Unlock()
				return
			}
			defer u.conn.Close()
			for id := 1; id <= commands; id++ {
				node := m.bed.Nodes[(i+id)%len(m.bed.Nodes)].Name
				fmt.Fprintf(u.conn, "%d talk -n %s ping\n", id, node)
				deadline := time.Now().Add(30 * time.Second)
				for {
					if _, ok := u.final(id); ok {
						mu.Lock()
						ended++
						mu.Unlock()
						break
					}
					if time.Now().After(deadline) {
						mu.Lock()
						failed++
						mu.Unlock()
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	m.unanswered.Add(int64(failed))
	m.note("%d of %d commands ended", ended, clients*commands)
	if failed > 0 {
		return fmt.Errorf("%d commands got no terminal reply", failed)
	}
	return nil
}

// leaverFlood: a user asks a camera for a flood and leaves; no line of it
// reaches another user, who keeps being answered.
func (m *matrix) leaverFlood(node string) error {
	others := []*rawUser{dialRaw(m.t, m.e, true), dialRaw(m.t, m.e, true)}
	leaver := dialRaw(m.t, m.e, true)
	fmt.Fprintf(leaver.conn, "1 talk -n %s sim-flood 300000\n", node)
	if err := m.eventually(time.Minute, func() error {
		if leaver.flood.Load() < 1000 {
			return fmt.Errorf("the flood did not start")
		}
		return nil
	}); err != nil {
		return err
	}
	leaver.conn.Close()
	for i, u := range others {
		fmt.Fprintf(u.conn, "1 ping\n")
		if err := m.eventually(10*time.Second, func() error {
			if _, ok := u.final(1); !ok {
				return fmt.Errorf("user %d: ping not answered during the flood", i)
			}
			return nil
		}); err != nil {
			m.unanswered.Add(1)
			return err
		}
	}
	// The camera finishes flooding. A sleep: once its user is gone the
	// daemon discards the flood's lines (pkg/device counts them but shows
	// the count nowhere) and the camera runs the flood beside later
	// commands, so nothing a test can see marks the flood's end.
	time.Sleep(5 * time.Second)
	for i, u := range others {
		fmt.Fprintf(u.conn, "2 talk -n %s ping\n", node)
		if err := m.eventually(30*time.Second, func() error {
			if _, ok := u.final(2); !ok {
				return fmt.Errorf("user %d: talk not answered after the flood", i)
			}
			return nil
		}); err != nil {
			m.unanswered.Add(1)
			return err
		}
		if n := u.flood.Load(); n != 0 {
			return fmt.Errorf("user %d received %d lines of another user's flood", i, n)
		}
		u.conn.Close()
	}
	m.note("no flood line reached another user")
	return nil
}

// stuckFlood: a user asks for a flood and never reads; it is dropped after
// the stall time, and another user's ping answers meanwhile.
func (m *matrix) stuckFlood(node string) error {
	const stall = 5 * time.Second
	stuck := dialRaw(m.t, m.e, false)
	fmt.Fprintf(stuck.conn, "1 talk -n %s sim-flood 1000000\n", node)
	since := time.Now()
	pinger := dialRaw(m.t, m.e, true)
	defer pinger.conn.Close()
	for id := 1; time.Since(since) < 3*stall; id++ {
		fmt.Fprintf(pinger.conn, "%d ping\n", id)
		if err := m.eventually(5*time.Second, func() error {
			if _, ok := pinger.final(id); !ok {
				return fmt.Errorf("ping %d not answered within 5 s during the flood", id)
			}
			return nil
		}); err != nil {
			m.unanswered.Add(1)
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	_ = stuck.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<20)
	var err error
	for err == nil {
		_, err = stuck.conn.Read(buf)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return fmt.Errorf("the stuck user was not dropped %s after it stopped reading", time.Since(since).Round(time.Second))
	}
	m.note("stuck user dropped; pings answered throughout")
	return nil
}
