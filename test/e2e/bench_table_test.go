package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// `make bench` runs BenchmarkTable on the test bed: every figure is a
// median (with p95 or p99 where it applies) over samples taken in this
// run, printed beside a baseline measured in the same run, as one table
// also written to test/bench-results/<date>.md and latest.md. Benchmarks
// only report: nothing here fails on a figure.
//
// Knobs (environment): BENCH_IDLE (the idle footprint window, default
// 5m), BENCH_CRASHLOOP (the crash-loop window, default 10m; it runs beside
// the other rows), BENCH_FLOOD (lines, default 1000000),
// BENCH_PINGS (round trips, default 1000), BENCH_RESULTS (the results
// directory, default test/bench-results).

// row is one line of the table.
type row struct {
	what, ours, tail, base, ratio, goal, met string
}

// table collects the rows in a fixed order; a row not measured says so.
type table struct {
	mu      sync.Mutex
	order   []string
	rows    map[string]row
	details []string
	started time.Time
}

func newTable(keys ...[2]string) *table {
	t := &table{rows: map[string]row{}, started: time.Now()}
	for _, k := range keys {
		t.order = append(t.order, k[0])
		t.rows[k[0]] = row{what: k[1], ours: "not measured", tail: "", base: "", ratio: "", goal: "", met: ""}
	}
	return t
}

func (t *table) set(key string, r row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.rows[key]; ok && r.what == "" {
		r.what = old.what
	}
	if _, ok := t.rows[key]; !ok {
		t.order = append(t.order, key)
	}
	t.rows[key] = r
}

func (t *table) detail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.details = append(t.details, fmt.Sprintf(format, args...))
}

func (t *table) markdown() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var sb strings.Builder
	sb.WriteString("| what | fliswarm median | p95 / p99 / worst | baseline (same run) | ratio | goal | met |\n")
	sb.WriteString("|---|---|---|---|---|---|---|\n")
	dash := func(s string) string {
		if s == "" {
			return "—"
		}
		return strings.ReplaceAll(s, "|", "/")
	}
	for _, k := range t.order {
		r := t.rows[k]
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %s |\n",
			r.what, dash(r.ours), dash(r.tail), dash(r.base), dash(r.ratio), dash(r.goal), dash(r.met))
	}
	return sb.String()
}

// write prints the table and writes the results file (also on a failed
// run: rows not reached say "not measured").
func (t *table) write(b *testing.B) {
	root, err := testbed.RepoRoot()
	if err != nil {
		b.Log(err)
		return
	}
	describe, _ := exec.Command("git", "-C", root, "describe", "--tags", "--always", "--dirty").Output()
	now := time.Now()
	var sb strings.Builder
	fmt.Fprintf(&sb, "# fliswarm benchmarks, %s\n\n", now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- commit: `%s`\n- machine: %d cores (%s/%s), shared\n- run: `make bench` (BenchmarkTable in test/e2e), %s\n",
		strings.TrimSpace(string(describe)), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Since(t.started).Round(time.Second))
	fmt.Fprintf(&sb, "- windows: idle footprint %s (BENCH_IDLE), crash loop %s (BENCH_CRASHLOOP)\n\n",
		envDuration("BENCH_IDLE", defaultIdle), envDuration("BENCH_CRASHLOOP", defaultCrashLoop))
	sb.WriteString(t.markdown())
	if len(t.details) > 0 {
		sb.WriteString("\nDetails:\n\n")
		for _, d := range t.details {
			fmt.Fprintf(&sb, "- %s\n", d)
		}
	}
	out := sb.String()
	fmt.Println(out)
	dir := os.Getenv("BENCH_RESULTS")
	if dir == "" {
		dir = filepath.Join(root, "test", "bench-results")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Log(err)
		return
	}
	for _, name := range []string{now.Format("2006-01-02") + ".md", "latest.md"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
			b.Log(err)
		}
	}
	b.Logf("results written to %s", filepath.Join(dir, "latest.md"))
}

const (
	defaultIdle      = 5 * time.Minute
	defaultCrashLoop = 10 * time.Minute
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

// quantile of durations (nearest rank on a sorted copy).
func quantile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

func median(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }

func worst(ds []time.Duration) time.Duration { return quantile(ds, 1) }

func total(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// fd formats a duration for the table.
func fd(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d.Nanoseconds())/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func seq(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(parts, " ")
}

// The table's rows, in order.
var benchRows = [][2]string{
	{"cold3-serial", "cold converge, 3 nodes, vs the original's steps one node after the other (docker CLI)"},
	{"cold3-floor", "cold converge, 3 nodes, vs the floor (`docker run -d` on every node in parallel)"},
	{"cold3-bound", "cold converge, 3 nodes: the floor itself vs the serial steps (the best ratio any tool reaches on this machine)"},
	{"cold30-serial", "cold converge, 30 logical nodes on 3 engines, vs the serial docker CLI steps"},
	{"cold30-floor", "cold converge, 30 logical nodes, vs the floor"},
	{"cold30-bound", "cold converge, 30 logical nodes: the floor itself vs the serial steps"},
	{"cold100-floor", "cold converge, 100 logical nodes on 3 engines, vs the floor"},
	{"rm-first", "container removed, 10 times in a row (no backoff: a removal is not a crash), until `talk -n N ping` answers"},
	{"rm-series", "container removed, 10 in a row: each recovery in order (s)"},
	{"kill-first", "process killed: first restart (until `talk -n N ping` answers)"},
	{"kill-series", "process killed, 10 in a row: median (worst); total"},
	{"kill-schedule", "process killed, 10 in a row: each recovery in order (s)"},
	{"loop-starts", "crash-looping camera (exits 2 at start): starts over the window"},
	{"loop-cpu", "crash-looping camera: CPU over the window (daemon + that engine's dockerd/containerd)"},
	{"loop-api", "crash-looping camera: Docker API requests per start"},
	{"restart", "restart fliswarm with 3 healthy cameras: containers recreated (restarted)"},
	{"talk-ping", "`talk -n gfa1 ping` added latency through fliswarm (1,000 round trips)"},
	{"fanout3", "`talk status` to 3 cameras vs the slowest single camera"},
	{"fanout30", "`talk status` to 30 cameras vs the slowest single camera"},
	{"flood-rate", "flood of 1,000,000 lines to one reading client: lines/s"},
	{"flood-cpu", "flood: daemon CPU per relayed line"},
	{"flood-rss", "flood: daemon RSS before / peak / after"},
	{"idle3", "idle daemon managing 3 nodes: RSS; CPU (of one core)"},
	{"idle30", "idle daemon managing 30 nodes: RSS; CPU (of one core)"},
	{"idle100", "idle daemon managing 100 nodes: RSS; CPU (of one core)"},
	{"api3", "Docker API requests per node per minute, steady state (3-node daemon)"},
	{"api30", "Docker API requests per node per minute, steady state (30-node daemon)"},
	{"api100", "Docker API requests per node per minute, steady state (100-node daemon)"},
	{"per-node", "idle cost per node (fit of the 3-, 30- and 100-node daemons)"},
}
