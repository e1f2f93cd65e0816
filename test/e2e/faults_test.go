package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdss/fliswarm/test/testbed"
)

// The fault matrix: every fault a small cluster of camera computers can
// produce, one after another against one running daemon, each with what
// an operator needs to trust: recovered or not and how fast, commands left
// without a terminal reply, cameras recreated that did not need to be, and
// what status said meanwhile. The table is printed and written to
// $FLISWARM_ARTIFACTS/fault-matrix.md (default test/e2e/artifacts).
// FLISWARM_FAULTS=<regexp> runs only the faults it matches, to try one.

// fault is one row of the matrix.
type fault struct {
	name string
	// node is the node the fault concerns (its phases are reported).
	node string
	// recreate are the nodes whose camera the fault itself replaces.
	recreate []string
	// inject causes the fault and returns once it is in place; heal (if
	// any) ends it. Recovery is timed from the end of heal, or of inject.
	inject func(m *matrix) error
	heal   func(m *matrix) error
	// quiet pauses the background prober (the daemon itself goes away).
	quiet bool
	// nothingDown: the fault takes no camera down (load on the actor
	// port); there is no recovery to time.
	nothingDown bool
}

type faultRow struct {
	fault       string
	nothingDown bool
	recovered   bool
	recovery    time.Duration
	unanswered  int64
	needless    []string
	status      string
	note        string
}

// matrix is the running daemon and what watches it.
type matrix struct {
	t   *testing.T
	bed *testbed.Bed
	e   *env
	// unanswered counts commands of the fault itself that got no terminal
	// reply.
	unanswered atomic.Int64
	notes      []string
	prober     *prober
	sampler    *sampler
	// extraRecreate and statusNode are filled by a fault whose node is
	// known only once it happened.
	extraRecreate []string
	statusNode    string
	// faultAt is when the fault struck: recovery is timed from it (or from
	// the end of heal).
	faultAt time.Time
}

// mark notes that the fault strikes now.
func (m *matrix) mark() { m.faultAt = time.Now() }

func (m *matrix) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

// containerIDs returns each node's camera container id ("" for none).
func (m *matrix) containerIDs() map[string]string {
	ids := map[string]string{}
	for _, n := range m.bed.Nodes {
		if c, err := runningContainer(m.t, n); err == nil {
			ids[n.Name] = c.ID
		} else if cs := managed(m.t, n); len(cs) > 0 {
			ids[n.Name] = cs[0].ID
		}
	}
	return ids
}

// healthy says why the bed is not back to normal, nil when it is: every
// node ready in the daemon's status and every camera answering.
func (m *matrix) healthy() error {
	st, err := m.e.status()
	if err != nil {
		return err
	}
	for _, n := range m.bed.Nodes {
		found, ready, _, _, lastErr := statusOf(st, n.Name)
		if !found || !ready {
			return fmt.Errorf("%s not ready (%s)", n.Name, lastErr)
		}
		if _, err := cameraStatus(n); err != nil {
			return fmt.Errorf("%s: %v", n.Name, err)
		}
	}
	return nil
}

func TestFaultMatrix(t *testing.T) {
	bed := testbed.Ensure(t)
	if len(bed.Nodes) < 3 {
		t.Skip("the fault matrix needs three nodes")
	}
	e := newEnv(t, bed, func(cfg map[string]any) {
		cfg["resync_interval"] = 5
		cfg["ready_timeout"] = 5
		cfg["command_timeout"] = 10
		cfg["update_wait"] = 60
		cfg["actor"].(map[string]any)["stall_timeout"] = 5
	})
	converge(t, e)
	e.startDaemon()
	waitAllReady(t, e, time.Minute)
	m := &matrix{t: t, bed: bed, e: e}
	m.prober = startProber(t, e)
	m.sampler = startSampler(e)
	defer m.sampler.stop()
	defer m.prober.stop()

	var rows []faultRow
	// FLISWARM_FAULTS, a regular expression, runs only the faults whose
	// names it matches (and writes no table file).
	only, err := regexp.Compile(os.Getenv("FLISWARM_FAULTS"))
	if err != nil {
		t.Fatalf("FLISWARM_FAULTS: %v", err)
	}
	for _, f := range faults(bed) {
		if !only.MatchString(f.name) {
			continue
		}
		rows = append(rows, m.run(f))
	}
	table := renderTable(rows)
	t.Logf("fault matrix:\n%s", table)
	if only.String() == "" {
		writeFaultMatrix(t, table) // a part of the matrix is not the matrix
	}
	for _, r := range rows {
		if !r.recovered || r.unanswered > 0 || len(r.needless) > 0 || r.note != "" && strings.HasPrefix(r.note, "FAIL") {
			t.Errorf("fault %q: recovered %v, unanswered %d, needless recreations %v, %s", r.fault, r.recovered, r.unanswered, r.needless, r.note)
		}
	}
}

// writeFaultMatrix writes the table, headed by the date, the commit and
// the settings, to test/fault-matrix/latest.md (committed: the README
// links it) and to $FLISWARM_ARTIFACTS/fault-matrix.md when that is set.
func writeFaultMatrix(t *testing.T, table string) {
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Log(err)
		return
	}
	// The commit, "-dirty" when anything but the generated results differs
	// from it (this file itself is rewritten by every run).
	describe, _ := exec.Command("git", "-C", root, "describe", "--tags", "--always").Output()
	if changed, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".",
		":(exclude)test/fault-matrix", ":(exclude)test/bench-results").Output(); len(bytes.TrimSpace(changed)) > 0 {
		describe = append(bytes.TrimSpace(describe), "-dirty"...)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "# fliswarm fault matrix, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- commit: `%s`\n- machine: %d cores (%s/%s), shared\n", strings.TrimSpace(string(describe)), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	sb.WriteString("- run: `TestFaultMatrix` in test/e2e (part of `make test`): every fault below, one after another, against one running daemon on the test bed, " +
		"while a second client sends `talk status` to every camera all the time\n")
	sb.WriteString("- settings: `ready_timeout: 5`, `command_timeout: 10`, `actor.stall_timeout: 5`\n\n")
	sb.WriteString("Columns: whether every node came back ready with every camera answering; how long that took (from the fault, or from its end for " +
		"those that are undone: a heal, an engine start, a registry start, a configuration put back; `—` where nothing went down); commands left without " +
		"a final reply; cameras recreated that the fault did not call for; the phases the daemon's status went through for the node concerned " +
		"(sampled every 50 ms).\n\n")
	sb.WriteString(table)
	out := sb.String()
	dirs := []string{filepath.Join(root, "test", "fault-matrix")}
	if d := os.Getenv("FLISWARM_ARTIFACTS"); d != "" {
		dirs = append(dirs, d)
	}
	for i, dir := range dirs {
		name := "latest.md"
		if i > 0 {
			name = "fault-matrix.md"
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Log(err)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
			t.Log(err)
		}
	}
}

// run injects one fault and measures the recovery.
func (m *matrix) run(f fault) faultRow {
	m.t.Logf("== fault: %s", f.name)
	row := faultRow{fault: f.name, nothingDown: f.nothingDown}
	before := m.containerIDs()
	m.unanswered.Store(0)
	m.notes, m.extraRecreate, m.statusNode = nil, nil, f.node
	if f.quiet {
		m.prober.pause()
	}
	probed := m.prober.unansweredCount()
	m.sampler.reset()
	m.mark()
	err := f.inject(m)
	if f.heal != nil {
		// Undo the fault even when injecting it went wrong, so that one
		// failure does not spill into the next faults.
		if herr := f.heal(m); err == nil {
			err = herr
		}
		m.mark()
	}
	start := m.faultAt
	if err != nil {
		m.note("FAIL: %v", err)
	}
	deadline := start.Add(90 * time.Second)
	for {
		herr := m.healthy()
		if herr == nil {
			row.recovered, row.recovery = err == nil, time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			m.note("FAIL: not recovered within 90 s: %v", herr)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.quiet {
		m.prober.resume()
	}
	// The prober's command in flight at recovery has ended (answered or
	// counted): it sends one at a time, so two more sent prove it.
	if err := m.prober.settle(70 * time.Second); err != nil {
		m.note("FAIL: %v", err)
	}
	row.unanswered = m.unanswered.Load() + m.prober.unansweredCount() - probed
	after := m.containerIDs()
	expected := append(slices.Clone(f.recreate), m.extraRecreate...)
	for _, n := range m.bed.Nodes {
		if before[n.Name] != after[n.Name] && !slices.Contains(expected, n.Name) {
			row.needless = append(row.needless, n.Name)
		}
	}
	row.status = m.sampler.phases(m.statusNode)
	row.note = strings.Join(m.notes, "; ")
	m.t.Logf("   recovered %v in %s; unanswered %d; needless %v; status %s; %s",
		row.recovered, row.recovery.Round(time.Millisecond), row.unanswered, row.needless, row.status, row.note)
	return row
}

func renderTable(rows []faultRow) string {
	var b strings.Builder
	b.WriteString("| fault | recovered | time to recover | commands without a terminal reply | needless recreations | status during the fault | notes |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		rec := "yes"
		if !r.recovered {
			rec = "**no**"
		}
		took := r.recovery.Round(10 * time.Millisecond).String()
		if r.nothingDown {
			took = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s |\n", r.fault, rec, took,
			r.unanswered, len(r.needless), r.status, strings.ReplaceAll(r.note, "|", "/"))
	}
	return b.String()
}

// prober sends `talk status` to every camera, one after another, all the
// time, and counts the commands that got no terminal reply within 30 s.
type prober struct {
	e      *env
	t      *testing.T
	paused atomic.Bool
	// pauses counts pause(): a command sent before a pause (the daemon
	// killed under it) is not held against the daemon.
	pauses     atomic.Int64
	unanswered atomic.Int64
	sent       atomic.Int64
	quit       chan struct{}
	done       chan struct{}
}

func startProber(t *testing.T, e *env) *prober {
	p := &prober{e: e, t: t, quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *prober) loop() {
	defer close(p.done)
	var u *rawUser
	var dialedIn int64 // p.pauses when u was dialed
	id := 0
	for {
		select {
		case <-p.quit:
			return
		case <-time.After(300 * time.Millisecond):
		}
		if p.paused.Load() {
			if u != nil {
				u.conn.Close()
				u = nil
			}
			continue
		}
		if u != nil && p.pauses.Load() != dialedIn {
			// A pause came and went while this loop slept: the
			// connection may be to the daemon killed meanwhile.
			u.conn.Close()
			u = nil
		}
		if u == nil {
			dialedIn = p.pauses.Load()
			u = dialRawQuiet(p.e)
			if u == nil {
				continue
			}
		}
		id++
		sentIn := p.pauses.Load()
		if _, err := fmt.Fprintf(u.conn, "%d talk status\n", id); err != nil {
			u.conn.Close()
			u = nil
			continue
		}
		p.sent.Add(1)
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, ok := u.final(id); ok {
				break
			}
			if time.Now().After(deadline) || p.paused.Load() || p.pauses.Load() != sentIn {
				if !p.paused.Load() && p.pauses.Load() == sentIn {
					p.unanswered.Add(1)
					p.t.Logf("prober: talk status %d got no terminal reply", id)
				}
				u.conn.Close()
				u = nil
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// settle returns once the prober has sent two more commands: the one in
// flight at the call, if any, has ended.
func (p *prober) settle(timeout time.Duration) error {
	sent0, deadline := p.sent.Load(), time.Now().Add(timeout)
	for p.sent.Load() < sent0+2 {
		if time.Now().After(deadline) {
			return fmt.Errorf("the prober sent %d commands in %s", p.sent.Load()-sent0, timeout)
		}
		time.Sleep(50 * time.Millisecond) // polling the counter
	}
	return nil
}

func (p *prober) pause()                 { p.pauses.Add(1); p.paused.Store(true) }
func (p *prober) resume()                { p.paused.Store(false) }
func (p *prober) unansweredCount() int64 { return p.unanswered.Load() }
func (p *prober) stop()                  { close(p.quit); <-p.done }

// sampler records the phases each node goes through, from the daemon's
// status, every 50 ms.
type sampler struct {
	mu    sync.Mutex
	nodes []string
	seen  map[string][]string
	quit  chan struct{}
	done  chan struct{}
}

func startSampler(e *env) *sampler {
	s := &sampler{seen: map[string][]string{}, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.quit:
				return
			case <-time.After(50 * time.Millisecond):
			}
			st, err := e.status()
			if err != nil {
				s.addAll("(daemon down)")
				continue
			}
			for _, n := range st.Nodes {
				phase := n.Phase
				switch {
				case n.Rollout != nil && n.Rollout.State != "" && phase == "Ready":
					phase = "Ready (rollout " + n.Rollout.State + ")"
				case phase == "Ready" && n.Condition("ImageReady") != nil && n.Condition("ImageReady").Reason == "PullFailed":
					phase = "Ready (pull failing)"
				}
				s.add(n.Name, phase)
			}
		}
	}()
	return s
}

func (s *sampler) add(node, phase string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if node != "" && !slices.Contains(s.nodes, node) {
		s.nodes = append(s.nodes, node)
	}
	if l := s.seen[node]; len(l) == 0 || l[len(l)-1] != phase {
		s.seen[node] = append(l, phase)
	}
}

// addAll adds phase to every node ever seen.
func (s *sampler) addAll(phase string) {
	s.mu.Lock()
	nodes := slices.Clone(s.nodes)
	s.mu.Unlock()
	for _, n := range nodes {
		s.add(n, phase)
	}
}

func (s *sampler) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = map[string][]string{}
}

// phases is the node's distinct phases in order ("*" for the daemon).
func (s *sampler) phases(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.seen[node])
	if len(out) > 8 {
		out = append(out[:4], append([]string{"…"}, out[len(out)-3:]...)...)
	}
	return strings.Join(out, " → ")
}

func (s *sampler) stop() { close(s.quit); <-s.done }
