package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/test/testbed"
)

// chromiumPath is Debian's chromium, which the browser test drives.
const chromiumPath = "/usr/bin/chromium"

// TestWebStatusPage: with the daemon running on the bed, /status,
// /metrics and / show every node; in headless Chromium the page shows a
// crashed camera's card go from running to recovering and back to
// running, live, without a reload; a screenshot is saved as an artifact.
func TestWebStatusPage(t *testing.T) {
	bed := testbed.Ensure(t)
	ensureChromium(t)
	e, _ := runningDaemon(t, bed)
	base := "http://" + e.http

	if code, body := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d %q", code, body)
	}

	// /status is the control socket's status.
	code, body := httpGet(t, base+"/status")
	var st v1.DaemonStatus
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/status = %d %v\n%s", code, err, body)
	}
	sock, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Daemon.Pid != sock.Daemon.Pid || st.Daemon.HTTPAddr != e.http || len(st.Nodes) != len(sock.Nodes) {
		t.Errorf("/status differs from the control socket's: pid %d/%d, http %q, %d/%d nodes",
			st.Daemon.Pid, sock.Daemon.Pid, st.Daemon.HTTPAddr, len(st.Nodes), len(sock.Nodes))
	}

	_, metrics := httpGet(t, base+"/metrics")
	_, page := httpGet(t, base+"/")
	for _, n := range bed.Nodes {
		if found, ready, _, _, _ := statusOf(st, n.Name); !found || !ready {
			t.Errorf("/status: %s found %v, ready %v", n.Name, found, ready)
		}
		for _, series := range []string{"ready", "reachable", "engine_alive", "container_running", "camera_connected"} {
			if line := fmt.Sprintf("fliswarm_node_%s{node=%q} 1", series, n.Name); !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %q", line)
			}
		}
		if card := fmt.Sprintf(`data-node="%s" data-phase="Ready" data-state="running"`, n.Name); !strings.Contains(page, card) {
			t.Errorf("/ lacks %s's card (%s)", n.Name, card)
		}
	}
	// A node's reconcile is counted when its pass ends, which may be
	// after the node is ready (the image collection at start).
	e.eventually(30*time.Second, "the reconcile histogram and the Go runtime in /metrics", func() error {
		_, metrics := httpGet(t, base+"/metrics")
		if !strings.Contains(metrics, "go_goroutines ") || !strings.Contains(metrics, "fliswarm_reconcile_duration_seconds_count") {
			return fmt.Errorf("not yet:\n%s", metrics)
		}
		return nil
	})

	// The browser: a crashed camera's card goes down and comes back, live.
	victim := bed.Nodes[0].Name
	b := newBrowser(t)
	b.do(t, 30*time.Second, chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`body[data-conn="live"]`),
		chromedp.WaitVisible(fmt.Sprintf(`#nodes > [data-node=%q][data-ready="true"]`, victim)))
	b.eval(t, historyJS)
	bed.Crash(t, victim)
	tctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	_, err = chromedp.Run(tctx, chromedp.PollFunction[bool](transitionJS, chromedp.WithPollingArgs(victim),
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second)))
	cancel()
	hist := b.history(t, victim)
	if err != nil {
		b.screenshot(t, "web-status-page-failed.png")
		t.Fatalf("%s's card did not go running → recovering → running without a reload: %v\nstates seen: %q", victim, err, hist)
	}
	t.Logf("%s's card, as rendered: %s", victim, strings.Join(hist, " → "))
	// The card's recent events tell what happened.
	b.do(t, 30*time.Second, chromedp.WaitVisible(fmt.Sprintf(`#nodes > [data-node=%q] [data-field="events"] li[data-reason="Crashed"]`, victim)))
	events, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](fmt.Sprintf(
		`document.querySelector('#nodes > [data-node=%q] [data-field="events"]').innerText`, victim)))
	if err != nil || !strings.Contains(events, "Crashed: container flicamera-"+victim) || !strings.Contains(events, "exit code 137") ||
		!strings.Contains(events, "Started: container flicamera-"+victim) {
		t.Errorf("%s's recent events lack the restart (%v):\n%s", victim, err, events)
	}
	b.screenshot(t, "web-status-page.png")

	// The restart is counted.
	_, metrics = httpGet(t, base+"/metrics")
	if v := metricValue(metrics, fmt.Sprintf("fliswarm_node_restarts_total{node=%q}", victim)); v < 1 {
		t.Errorf("fliswarm_node_restarts_total of %s = %v after a crash, want ≥ 1", victim, v)
	}
	if v := metricValue(metrics, `fliswarm_actions_total{kind="start-container",outcome="ok"}`); v < 1 {
		t.Errorf(`fliswarm_actions_total{kind="start-container",outcome="ok"} = %v after a crash, want ≥ 1`, v)
	}
}

// historyJS records, from the rendered DOM, every state each node's card
// goes through (a MutationObserver on the cards' data attributes), and
// marks the page so that a reload would be seen.
const historyJS = `(() => {
  const grid = document.getElementById("nodes");
  const hist = window.__fliswarmHistory = {};
  const record = card => {
    const h = (hist[card.dataset.node] ||= []);
    const s = card.dataset.state + "/" + card.dataset.ready + "/" + card.dataset.phase;
    if (h[h.length - 1] !== s) h.push(s);
  };
  new MutationObserver(muts => {
    for (const m of muts) {
      const card = m.target.nodeType === 1 && m.target.closest("#nodes > [data-node]");
      if (card) record(card);
      for (const n of m.addedNodes) if (n.nodeType === 1 && n.matches("#nodes > [data-node]")) record(n);
    }
  }).observe(grid, { subtree: true, childList: true, attributes: true,
    attributeFilter: ["data-state", "data-ready", "data-phase"] });
  grid.querySelectorAll(":scope > [data-node]").forEach(record);
  window.__fliswarmNoReload = true;
  return true;
})()`

// transitionJS holds once the node's card was running (ready), then
// recovering (not ready), then running again, in the same page.
const transitionJS = `((node) => {
  const h = (window.__fliswarmHistory || {})[node] || [];
  let step = 0;
  for (const s of h) {
    const [state, ready] = s.split("/");
    if (step === 0 && state === "running" && ready === "true") step = 1;
    else if (step === 1 && state === "recovering" && ready === "false") step = 2;
    else if (step === 2 && state === "running" && ready === "true") return window.__fliswarmNoReload === true;
  }
  return false;
})`

// browser is a headless Chromium driven over the DevTools protocol.
type browser struct {
	ctx context.Context
	dir string // artifacts
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	dir := artifactsDir(t)
	logf, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	// A fresh profile, removed once the browser has exited.
	profile, err := os.MkdirTemp("", "fliswarm-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1600, 1000),
		chromedp.CombinedOutput(logf),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as ctx.
	start := make(chan error, 1)
	go func() { start <- chromedp.Do(ctx) }()
	select {
	case err := <-start:
		if err != nil {
			t.Fatalf("starting %s: %v (see %s)", chromiumPath, err, logf.Name())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within 60 s (see %s)", chromiumPath, logf.Name())
	}
	return &browser{ctx: ctx, dir: dir}
}

func (b *browser) do(t *testing.T, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.screenshot(t, "web-status-page-failed.png")
		t.Fatal(err)
	}
}

func (b *browser) eval(t *testing.T, js string) {
	t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](js)); err != nil {
		t.Fatal(err)
	}
}

func (b *browser) history(t *testing.T, node string) []string {
	h, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`(window.__fliswarmHistory || {})[%q] || []`, node)))
	if err != nil {
		t.Logf("reading the card's history: %v", err)
	}
	return h
}

// screenshot saves the whole page as a PNG in the artifacts directory.
func (b *browser) screenshot(t *testing.T, name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	path := filepath.Join(b.dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// artifactsDir is $FLISWARM_ARTIFACTS, default test/e2e/artifacts.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLISWARM_ARTIFACTS")
	if dir == "" {
		root, err := testbed.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test", "e2e", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ensureChromium installs Debian's chromium when it is missing (make e2e
// installs it beforehand; this covers a bare `go test`).
func ensureChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return
	}
	t.Logf("%s is missing: installing Debian's chromium", chromiumPath)
	install := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "chromium")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := install()
	if err != nil {
		if up, uerr := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=600", "update").CombinedOutput(); uerr != nil {
			t.Fatalf("apt-get update: %v\n%s", uerr, up)
		}
		out, err = install()
	}
	if err != nil {
		t.Fatalf("apt-get install chromium: %v\n%s", err, out)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metricValue is the value of one series in a Prometheus text page, -1
// when absent.
func metricValue(page, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(page)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}
