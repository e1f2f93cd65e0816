package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// actorEnv converges the bed, starts the daemon and waits until every
// camera is connected to the actor.
func actorEnv(t *testing.T) (*testbed.Bed, *env) {
	t.Helper()
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)
	var names []string
	for _, n := range bed.Nodes {
		names = append(names, n.Name)
	}
	waitConnected(t, e, names...)
	return bed, e
}

// waitConnected waits until the daemon reports the actor connected to
// each named node's camera.
func waitConnected(t testing.TB, e *env, nodes ...string) {
	t.Helper()
	e.eventually(time.Minute, "cameras connected to the actor", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, name := range nodes {
			connected := slices.ContainsFunc(st.Nodes, func(n v1.NodeStatus) bool { return n.Name == name && n.DeviceConnected })
			if !connected {
				return fmt.Errorf("%s not connected", name)
			}
		}
		return nil
	})
}

func dialActor(t *testing.T, e *env) *opscore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := opscore.Dial(ctx, e.actor)
	if err != nil {
		t.Fatalf("dial actor %s: %v", e.actor, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send runs one command and returns every reply line and the final one.
func send(t *testing.T, c *opscore.Client, body string, timeout time.Duration) ([]opscore.Reply, opscore.Reply) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var mu sync.Mutex
	var lines []opscore.Reply
	final, err := c.Send(ctx, body, func(r opscore.Reply) {
		mu.Lock()
		lines = append(lines, r)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("%q: %v (replies so far: %v)", body, err, replyLines(lines))
	}
	mu.Lock()
	defer mu.Unlock()
	return lines, final
}

func replyLines(rs []opscore.Reply) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Line + "\n")
	}
	return b.String()
}

// TestActorGreetingAndGarbage: the connect greeting is exact, and
// garbage lines get `f` with an error while the connection stays usable.
func TestActorGreetingAndGarbage(t *testing.T) {
	_, e := actorEnv(t)
	conn, err := net.DialTimeout("tcp", e.actor, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	readLine := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimRight(l, "\n")
	}
	greeting := []string{readLine(), readLine(), readLine()}
	uid := strings.Fields(greeting[0])[0]
	if !regexp.MustCompile(`^\d+ 0 i yourUserID=\d+; num_users=\d+$`).MatchString(greeting[0]) ||
		!regexp.MustCompile(`^0 0 i UserInfo=`+uid+`,127\.0\.0\.1$`).MatchString(greeting[1]) ||
		!regexp.MustCompile(`^`+uid+` 0 i version="[^"]+"$`).MatchString(greeting[2]) {
		t.Fatalf("greeting:\n%s", strings.Join(greeting, "\n"))
	}
	for _, bad := range []string{"\x00\x01\xff\xfe garbage", `5 talk "unterminated`, "6 nosuchcommand", strings.Repeat("x", 100_000)} {
		if _, err := conn.Write([]byte(bad + "\n")); err != nil {
			t.Fatal(err)
		}
		for {
			l := readLine()
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == uid && f[2] == "f" {
				if !strings.Contains(l, "error=") {
					t.Errorf("failure without error keyword: %q", l)
				}
				break
			}
		}
	}
	if _, err := conn.Write([]byte("9 ping\n")); err != nil {
		t.Fatal(err)
	}
	for {
		if l := readLine(); strings.HasPrefix(l, uid+" 9 :") {
			if l != uid+" 9 : text=Pong." {
				t.Errorf("ping reply %q", l)
			}
			break
		}
	}
}

// TestActorStatusAndTalk: `status` gives the exact keyword lines for
// every node; `talk status` relays every camera's status with the node
// name prepended; `talk expose 1` ends with a filename_bundle of real
// FITS files in the shared directory.
func TestActorStatusAndTalk(t *testing.T) {
	bed, e := actorEnv(t)
	c := dialActor(t, e)

	lines, final := send(t, c, "status", time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("status: %s", final.Line)
	}
	out := replyLines(lines)
	var names []string
	for _, n := range bed.Nodes {
		names = append(names, n.Name)
	}
	uid := fmt.Sprint(c.UserID())
	mustHave := []string{fmt.Sprintf("i enabledNodes=%s", strings.Join(names, ","))}
	for _, n := range bed.Nodes {
		ctr, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		mustHave = append(mustHave,
			fmt.Sprintf("i node=%s,%s,%s,T,T", n.Name, n.IP, n.DockerHost),
			fmt.Sprintf("d container=%s,%s", n.Name, ctr.ID[:12]),
			fmt.Sprintf("d volume=%s,data,T,%s", n.Name, bed.DataDir))
	}
	for _, want := range mustHave {
		if !regexp.MustCompile(`(?m)^` + uid + ` \d+ ` + regexp.QuoteMeta(want) + `$`).MatchString(out) {
			t.Errorf("status lacks line %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, " w ") {
		t.Errorf("status of a healthy bed has warnings:\n%s", out)
	}

	lines, final = send(t, c, "talk status", time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("talk status: %s\n%s", final.Line, replyLines(lines))
	}
	for _, n := range bed.Nodes {
		found := false
		for _, l := range lines {
			if kw, ok := l.Get("status"); ok && len(kw.Values) > 1 && kw.Values[0] == n.Name {
				found = true
			}
		}
		if !found {
			t.Errorf("no status relayed from %s:\n%s", n.Name, replyLines(lines))
		}
	}

	lines, final = send(t, c, "talk expose 1", 2*time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("talk expose: %s\n%s", final.Line, replyLines(lines))
	}
	var bundle []string
	for _, l := range lines {
		if kw, ok := l.Get("filename_bundle"); ok {
			for _, v := range kw.Values {
				bundle = append(bundle, fmt.Sprint(v))
			}
		}
	}
	if len(bundle) != len(bed.Nodes) {
		t.Fatalf("filename_bundle %v:\n%s", bundle, replyLines(lines))
	}
	for _, f := range bundle {
		info, err := os.Stat(f)
		if err != nil || info.Size() < 2880 || info.Size()%2880 != 0 {
			t.Errorf("bundle file %s: %v (size %v)", f, err, info)
		}
		if !strings.HasPrefix(f, bed.DataDir) {
			t.Errorf("file %s is not in the shared data directory %s", f, bed.DataDir)
		}
	}
}

// TestActorTalkToKilledCamera: a camera whose container was just killed
// gets a warning and the talk still ends; the reconciler then brings it
// back and talk works again.
func TestActorTalkToKilledCamera(t *testing.T) {
	bed, e := actorEnv(t)
	c := dialActor(t, e)
	victim := bed.Nodes[0]
	// Kill it during its exposure: the command in flight must end.
	done := sendSeen(t, c, "talk expose 3", 2*time.Minute, integrating(victim.Name))
	bed.Crash(t, victim.Name)
	var r sent
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("talk did not end after a camera was killed")
	}
	if r.err != nil {
		t.Fatalf("talk expose: %v\n%s", r.err, replyLines(r.lines))
	}
	lines, final := r.lines, r.final
	out := replyLines(lines)
	if !strings.Contains(out, victim.Name) || !regexp.MustCompile(`(?m) w .*`+victim.Name).MatchString(out) {
		t.Errorf("no warning naming %s:\n%s", victim.Name, out)
	}
	if final.Code.Terminal() == false {
		t.Errorf("final reply %q", final.Line)
	}
	// The daemon brings it back; talk reaches all cameras again.
	e.eventually(time.Minute, "camera back and connected", func() error {
		st, err := e.status()
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if !n.DeviceConnected || !n.Ready() {
				return fmt.Errorf("%s not back", n.Name)
			}
		}
		return nil
	})
	lines, final = send(t, c, "talk -n "+victim.Name+" ping", time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("talk after recovery: %s\n%s", final.Line, replyLines(lines))
	}
}

// TestActorDisableEnableReconnect: disable removes a node from talk;
// enable brings it back; reconnect --force gives a new container and a
// working camera.
func TestActorDisableEnableReconnect(t *testing.T) {
	bed, e := actorEnv(t)
	c := dialActor(t, e)
	n := bed.Nodes[0]

	lines, final := send(t, c, "disable "+n.Name, 30*time.Second)
	if final.Code != opscore.Done || strings.Contains(replyLines(lines), "enabledNodes="+n.Name) {
		t.Fatalf("disable:\n%s", replyLines(lines))
	}
	lines, final = send(t, c, "disable nosuchnode", 30*time.Second)
	if final.Code != opscore.Done || !strings.Contains(replyLines(lines), "Cannot find node nosuchnode") {
		t.Errorf("disable of an unknown node:\n%s", replyLines(lines))
	}
	lines, _ = send(t, c, "talk status", time.Minute)
	for _, l := range lines {
		if kw, ok := l.Get("status"); ok && len(kw.Values) > 0 && kw.Values[0] == n.Name {
			t.Errorf("talk reached disabled node %s", n.Name)
		}
	}
	lines, final = send(t, c, "enable "+n.Name, 30*time.Second)
	if final.Code != opscore.Done || !strings.Contains(replyLines(lines), n.Name) {
		t.Fatalf("enable:\n%s", replyLines(lines))
	}

	before, err := runningContainer(t, n)
	if err != nil {
		t.Fatal(err)
	}
	lines, final = send(t, c, "reconnect -n "+n.Name+" --force", 3*time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("reconnect: %s\n%s", final.Line, replyLines(lines))
	}
	after, err := runningContainer(t, n)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID == before.ID {
		t.Errorf("reconnect --force kept container %s", before.ID[:12])
	}
	if !strings.Contains(replyLines(lines), "container="+n.Name+","+after.ID[:12]) {
		t.Errorf("reconnect did not report the new container:\n%s", replyLines(lines))
	}
	lines, final = send(t, c, "talk -n "+n.Name+" status", time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("camera not working after reconnect: %s\n%s", final.Line, replyLines(lines))
	}
}

// TestActorManyClients: 20 clients sending commands at once all get their
// terminal replies.
func TestActorManyClients(t *testing.T) {
	_, e := actorEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, err := opscore.Dial(ctx, e.actor)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for _, body := range []string{"ping", "talk status", "status", "version"} {
				final, err := c.Send(ctx, body, nil)
				if err != nil {
					errs <- fmt.Errorf("client %d %q: %w", i, body, err)
					return
				}
				if final.Code != opscore.Done {
					errs <- fmt.Errorf("client %d %q: %s", i, body, final.Line)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSendCommand: `fliswarm send` prints the replies and exits 0 on `:`
// and non-zero on `f`.
func TestSendCommand(t *testing.T) {
	_, e := actorEnv(t)
	out, _, code := e.run(2*time.Minute, "send", "talk expose 1")
	if code != 0 || !strings.Contains(out, "filename_bundle=") {
		t.Fatalf("send talk expose 1: exit %d\n%s", code, out)
	}
	_, _, code = e.run(time.Minute, "send", "nosuchcommand")
	if code == 0 {
		t.Errorf("send of an unknown command exited 0")
	}
}
