package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/test/testbed"
)

// countingProxy forwards HTTP to one engine's tcp address and counts the
// requests by method and path (IDs and names folded).
type countingProxy struct {
	addr   string
	mu     sync.Mutex
	counts map[string]int
}

var (
	apiVersion = regexp.MustCompile(`^/v[0-9.]+/`)
	apiObject  = regexp.MustCompile(`^/(containers|volumes|images|networks)/(.+?)(/[a-z]+)?$`)
)

func startProxy(b *testing.B, engine testbed.Node) *countingProxy {
	target, err := url.Parse(strings.Replace(engine.DockerHost, "tcp://", "http://", 1))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p := &countingProxy{addr: ln.Addr().String(), counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // the event stream flows through at once
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if apiVersion.MatchString(path) {
			path = "/" + apiVersion.ReplaceAllString(path, "")
		}
		if m := apiObject.FindStringSubmatch(path); m != nil && m[2] != "json" && m[2] != "create" {
			path = "/" + m[1] + "/{id}" + m[3]
		}
		p.mu.Lock()
		p.counts[r.Method+" "+path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return p
}

func (p *countingProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// fleet is a daemon managing cams, one of them (the first) reaching its
// engine through a counting proxy; resync_interval is the default (30 s)
// and the daemon logs as the service does (start --foreground).
type fleet struct {
	e     *env
	cams  []logical
	proxy *countingProxy
	pid   int
}

func startFleet(b *testing.B, bed *testbed.Bed, cams []logical) *fleet {
	px := startProxy(b, cams[0].engine)
	e := newEnv(b, bed, func(cfg map[string]any) {
		withCameras(cams, map[string]string{cams[0].name: "tcp://" + px.addr}, nil)(cfg)
		delete(cfg, "resync_interval")
	})
	e.mode = "--foreground" // as the service runs it: info-level JSON logs
	e.startDaemon()
	return &fleet{e: e, cams: cams, proxy: px, pid: e.daemon.Process.Pid}
}

// waitReady waits until every camera answers and the actor is connected
// to each.
func (f *fleet) waitReady(b *testing.B, timeout time.Duration) {
	f.e.eventually(timeout, "every camera connected", func() error {
		st, err := f.e.status()
		if err != nil {
			return err
		}
		for _, c := range f.cams {
			if !slices.ContainsFunc(st.Nodes, func(n v1.NodeStatus) bool { return n.Name == c.name && n.DeviceConnected && n.Ready() }) {
				return fmt.Errorf("%s not ready and connected", c.name)
			}
		}
		return nil
	})
}

// benchIdle samples the daemons' RSS and CPU over window, beside the
// first engine's dockerd, and counts the proxied node's API requests.
func benchIdle(b *testing.B, bed *testbed.Bed, tab *table, window time.Duration, fleets map[string]*fleet) {
	time.Sleep(5 * time.Second) // let the start settle
	type sample struct {
		cpu0    time.Duration
		rss     []int64
		counts0 map[string]int
	}
	s := map[string]*sample{}
	for k, f := range fleets {
		s[k] = &sample{cpu0: procCPU(f.pid), counts0: f.proxy.snapshot()}
	}
	eng := enginePids(bed, bed.Nodes[0].Name)
	engCPU0 := cpuOf(eng)
	var engRSS []int64
	t0 := time.Now()
	for time.Since(t0) < window {
		for k, f := range fleets {
			s[k].rss = append(s[k].rss, procRSS(f.pid))
		}
		engRSS = append(engRSS, procRSS(eng[0]))
		time.Sleep(time.Second)
	}
	el := time.Since(t0)
	engPct := 100 * float64(cpuOf(eng)-engCPU0) / float64(el)
	var fit [][3]float64 // nodes, CPU %, RSS MiB
	for k, f := range fleets {
		pct := 100 * float64(procCPU(f.pid)-s[k].cpu0) / float64(el)
		med, top := medianInt(s[k].rss), slices.Max(s[k].rss)
		fit = append(fit, [3]float64{float64(len(f.cams)), pct, float64(med) / (1 << 20)})
		tab.set("idle"+k, row{ours: fmt.Sprintf("%s; %.2f %%", mib(med), pct), tail: "RSS max " + mib(top),
			base: fmt.Sprintf("dockerd of %s: %s; %.2f %%", bed.Nodes[0].Name, mib(medianInt(engRSS)), engPct),
			goal: "< 40 MB; < 1 %", met: yes(top < 40e6 && pct < 1)})
		end := f.proxy.snapshot()
		var n int
		var parts []string
		for path, c := range end {
			if d := c - s[k].counts0[path]; d > 0 {
				n += d
				parts = append(parts, fmt.Sprintf("%s ×%d", path, d))
			}
		}
		slices.Sort(parts)
		perMin := float64(n) / el.Minutes()
		// Steady state is only the resync's reads (GET, HEAD) over the
		// event stream opened once: no write, no new event stream.
		steady := true
		for path, c := range end {
			if c > s[k].counts0[path] && !strings.HasPrefix(path, "GET ") && !strings.HasPrefix(path, "HEAD ") ||
				strings.HasPrefix(path, "GET /events") && c > s[k].counts0[path] {
				steady = false
			}
		}
		tab.set("api"+k, row{ours: fmt.Sprintf("%.1f", perMin), tail: fmt.Sprintf("%d over %s", n, el.Round(time.Second)),
			base: "a resync (one container list) every 2 min while the event stream is up, over one event stream",
			goal: "≤ 2; only resync and event stream", met: yes(steady && perMin <= 2)})
		tab.detail("API requests of node %s (%s nodes) over %s idle: %s; since the daemon started: %s", f.cams[0].name, k,
			el.Round(time.Second), strings.Join(parts, ", "), fmtCounts(end))
	}
	if len(fit) >= 2 {
		cpu0, cpuPer := lineFit(fit, 1)
		rss0, rssPer := lineFit(fit, 2)
		tab.set("per-node", row{ours: fmt.Sprintf("%.4f %% of a core and %.2f MiB per node", cpuPer, rssPer),
			tail: fmt.Sprintf("fixed: %.2f %%, %.1f MiB", cpu0, rss0),
			base: fmt.Sprintf("so 300 nodes: %.2f %%, %.0f MiB", cpu0+300*cpuPer, rss0+300*rssPer)})
	}
}

// lineFit is the least-squares line through (p[0], p[col]): intercept and
// slope.
func lineFit(ps [][3]float64, col int) (a, b float64) {
	var sx, sy, sxx, sxy float64
	n := float64(len(ps))
	for _, p := range ps {
		sx, sy, sxx, sxy = sx+p[0], sy+p[col], sxx+p[0]*p[0], sxy+p[0]*p[col]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	return (sy - b*sx) / n, b
}

func fmtCounts(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
