package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// touchCamera connects to a node's camera and closes the connection: the
// camera logs "client connected" with the peer address, which is
// returned, a line nobody else's connection can print.
func touchCamera(t *testing.T, n testbed.Node) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(n.IP, "19995"), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s's camera: %v", n.Name, err)
	}
	peer := conn.LocalAddr().String()
	time.Sleep(100 * time.Millisecond) // let it log the connection before the close
	conn.Close()
	return "peer=" + peer
}

// TestLogs: `fliswarm logs` through the daemon and without it, the
// actor's logs command, and the failures that must end at once.
func TestLogs(t *testing.T) {
	bed := testbed.Ensure(t)
	e, _ := runningDaemon(t, bed)
	g1, g2 := bed.Nodes[0], bed.Nodes[1]
	waitConnected(t, e, g1.Name)

	t.Run("follow shows a line printed after it started", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, fliswarmBin(t), "-c", e.config, "--run-dir", e.runDir, "logs", g1.Name, "-f", "--tail", "1")
		stdout, _ := cmd.StdoutPipe()
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The header says which container follows; the stream is open.
		errs := bufio.NewReader(stderr)
		header, err := errs.ReadString('\n')
		for err == nil && strings.HasPrefix(header, "warning: ") {
			header, err = errs.ReadString('\n')
		}
		if err != nil || !strings.Contains(header, "==> "+g1.Name+": flicamera-"+g1.Name) || !strings.Contains(header, "running since") {
			t.Fatalf("header %q, %v", header, err)
		}
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// The last line written before comes first: the stream is open,
		// and the camera's next line can only come by following.
		select {
		case <-lines:
		case <-time.After(20 * time.Second):
			t.Fatal("logs -f --tail 1 printed nothing")
		}
		peer := touchCamera(t, g1)
		timeout := time.After(20 * time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("logs -f ended before the camera's line")
				}
				if strings.Contains(l, peer) && strings.Contains(l, "client connected") {
					break wait
				}
			case <-timeout:
				t.Fatalf("no line with %s within 20 s", peer)
			}
		}
		// Ctrl-C ends it, at once and successfully.
		start := time.Now()
		_ = cmd.Process.Signal(syscall.SIGINT)
		go func() {
			for range lines {
			}
		}()
		if err := cmd.Wait(); err != nil {
			t.Errorf("logs -f after SIGINT: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("logs -f took %s to end after SIGINT", d)
		}
	})

	t.Run("actor logs --tail 3", func(t *testing.T) {
		c := dialActor(t, e)
		replies, final := send(t, c, "logs "+g1.Name+" --tail 3", 30*time.Second)
		var texts []string
		for _, r := range replies {
			if k, ok := r.Get("text"); ok {
				if len(k.Values) != 2 || fmt.Sprint(k.Values[0]) != g1.Name {
					t.Errorf("text line %q is not text=<node>,<line>", r.Line)
				}
				texts = append(texts, r.Line)
			}
		}
		if final.Code != opscore.Done || len(texts) != 3 {
			t.Errorf("logs %s --tail 3: %d text lines, final %q:\n%s", g1.Name, len(texts), final.Line, replyLines(replies))
		}
		_, final = send(t, c, "logs nosuchnode", 30*time.Second)
		if final.Code != opscore.Failed || !strings.Contains(final.Line, "nosuchnode is not configured") {
			t.Errorf("logs of an unknown node: %q", final.Line)
		}
	})

	t.Run("previous after a crash shows the crashed run", func(t *testing.T) {
		before, err := runningContainer(t, g1)
		if err != nil {
			t.Fatal(err)
		}
		peer := touchCamera(t, g1)
		bed.Crash(t, g1.Name)
		e.eventually(time.Minute, "camera restarted in place", func() error {
			c, err := runningContainer(t, g1)
			switch {
			case err != nil:
				return err
			case c.ID != before.ID:
				return fmt.Errorf("recreated (%s), not restarted", c.ID)
			case !c.StartedAt.After(before.StartedAt):
				return fmt.Errorf("not restarted yet")
			}
			return nil
		})
		out, errOut, code := e.run(30*time.Second, "logs", g1.Name, "--previous", "--tail", "20")
		if code != 0 || !strings.Contains(out, peer) || !strings.Contains(errOut, "before its restart") {
			t.Errorf("logs --previous: exit %d, the crashed run's line %q missing or no header:\n%s%s", code, peer, out, errOut)
		}
		out, _, code = e.run(30*time.Second, "logs", g1.Name)
		if code != 0 || strings.Contains(out, peer) {
			t.Errorf("logs (current run) exit %d shows the crashed run's line %q:\n%s", code, peer, out)
		}
	})

	t.Run("the status page shows a camera's new line live", func(t *testing.T) {
		ensureChromium(t)
		b := newBrowser(t)
		card := fmt.Sprintf(`#nodes > [data-node=%q]`, g1.Name)
		b.do(t, 30*time.Second, chromedp.Navigate("http://"+e.http+"/"),
			chromedp.WaitVisible(`body[data-conn="live"]`),
			chromedp.WaitVisible(card+` [data-slot="logs"]`))
		peer := touchCamera(t, g1)
		tctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		_, err := chromedp.Run(tctx, chromedp.PollFunction[bool](
			`((sel, peer) => (document.querySelector(sel)?.innerText || "").includes(peer))`,
			chromedp.WithPollingArgs(card+` [data-field="logs"]`, peer),
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
		if err != nil {
			b.screenshot(t, "logs-card-failed.png")
			t.Fatalf("%s's card does not show the camera's line with %s: %v", g1.Name, peer, err)
		}
		b.screenshot(t, "logs-card.png")
	})

	t.Run("errors end at once", func(t *testing.T) {
		c := dialActor(t, e)
		if _, final := send(t, c, "disable "+g2.Name, 30*time.Second); final.Code != opscore.Done {
			t.Fatalf("disable: %s", final.Line)
		}
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"logs", "nosuchnode"}, 2, `unknown node "nosuchnode"`},
			{[]string{"logs", g2.Name}, 1, g2.Name + " is not enabled"},
		} {
			start := time.Now()
			_, errOut, code := e.run(30*time.Second, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) || time.Since(start) > 5*time.Second {
				t.Errorf("%v: exit %d after %s, stderr %q; want exit %d, %q", tc.args, code, time.Since(start), errOut, tc.code, tc.want)
			}
		}

		// An engine cut off: through the daemon, then without one.
		bed.Partition(t, g1.Name)
		start := time.Now()
		_, errOut, code := e.run(time.Minute, "logs", g1.Name)
		if code != 1 || !strings.Contains(errOut, "the engine did not answer within 5s: "+g1.Name) || time.Since(start) > 10*time.Second {
			t.Errorf("daemon, partitioned node: exit %d after %s: %s", code, time.Since(start), errOut)
		}
		e.stopDaemon()
		start = time.Now()
		_, errOut, code = e.run(time.Minute, "logs", g1.Name)
		if code != 1 || !strings.Contains(errOut, "no daemon runs") || time.Since(start) > 10*time.Second {
			t.Errorf("no daemon, partitioned node: exit %d after %s: %s", code, time.Since(start), errOut)
		}
	})
}
