package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/test/testbed"
)

// logical is one camera of a benchmark configuration: a fliswarm node on
// one of the bed's engines with its own port (set through the node's env).
type logical struct {
	name   string
	engine testbed.Node
	port   int
}

func (l logical) addr() string { return net.JoinHostPort(l.engine.IP, strconv.Itoa(l.port)) }

// bedCameras are the bed's own nodes on the default camera port.
func bedCameras(bed *testbed.Bed) []logical {
	var out []logical
	for _, n := range bed.Nodes {
		out = append(out, logical{name: n.Name, engine: n, port: 19995})
	}
	return out
}

// spreadCameras are n logical nodes <prefix>01.. spread over the bed's
// engines, with ports from base.
func spreadCameras(bed *testbed.Bed, prefix string, n, base int) []logical {
	var out []logical
	for i := 0; i < n; i++ {
		out = append(out, logical{name: fmt.Sprintf("%s%02d", prefix, i+1), engine: bed.Nodes[i%len(bed.Nodes)], port: base + i})
	}
	return out
}

// withCameras makes a configuration manage exactly cams; dockerClient,
// when not nil, overrides a node's docker-client (a counting proxy).
func withCameras(cams []logical, dockerClient map[string]string, extraEnv map[string]string) func(cfg map[string]any) {
	return func(cfg map[string]any) {
		nodes := map[string]any{}
		var enabled []any
		for _, c := range cams {
			env := map[string]any{"FLICAMERA_PORT": strconv.Itoa(c.port)}
			for k, v := range extraEnv {
				env[k] = v
			}
			dc := c.engine.DockerHost
			if p, ok := dockerClient[c.name]; ok {
				dc = p
			}
			nodes[c.name] = map[string]any{"host": c.engine.IP, "port": c.port, "docker-client": dc, "category": "gfa", "env": env}
			enabled = append(enabled, c.name)
		}
		cfg["nodes"] = nodes
		cfg["enabled_nodes"] = enabled
	}
}

// cluPing sends `ping` to a camera over its JSON protocol and waits for
// the final reply.
func cluPing(addr string, timeout time.Duration) error {
	return cluCommand(addr, "ping", timeout)
}

func cluCommand(addr, command string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(clu.FormatCommand(1, command)); err != nil {
		return err
	}
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return err
		}
		r, err := clu.ParseReply(line)
		if err == nil && r.Header.CommandID == 1 && clu.IsTerminal(r.Header.MessageCode) {
			return nil
		}
	}
}

// waitCLU waits until the camera at addr answers ping.
func waitCLU(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cluPing(addr, 500*time.Millisecond)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("camera %s did not answer ping within %s: %v", addr, timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procStat is a process's CPU time (user+system, with the children it
// waited for) and resident memory.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var sum int
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.Atoi(f[i])
		sum += v
	}
	return time.Duration(sum) * 10 * time.Millisecond // USER_HZ = 100
}

func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// enginePids are a bed node's dockerd and the containerd it manages.
func enginePids(bed *testbed.Bed, node string) []int {
	b, err := os.ReadFile(filepath.Join(bed.RunDir, node, "docker.pid"))
	if err != nil {
		return nil
	}
	dockerd, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	pids := []int{dockerd}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		s := string(st)
		if strings.HasPrefix(s, "Name:\tcontainerd\n") && strings.Contains(s, fmt.Sprintf("\nPPid:\t%d\n", dockerd)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cpuOf(pids []int) time.Duration {
	var s time.Duration
	for _, p := range pids {
		s += procCPU(p)
	}
	return s
}

func mib(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }

// waitPort waits until addr accepts TCP connections.
func waitPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not accept connections within %s", addr, timeout)
}

// ensureVolume creates the data volume on an engine as fliswarm does (a
// bind of the bed's data directory), so that a baseline container run
// with `-v data:...` does not create a volume fliswarm would then want
// to replace.
func ensureVolume(bed *testbed.Bed, n testbed.Node) error {
	out, err := dockerCLI(n.DockerHost, "volume", "create", "--driver", "local", "--opt", "type=none", "--opt", "o=bind",
		"--opt", "device="+bed.DataDir, "data").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: volume create: %v: %s", n.Name, err, out)
	}
	return nil
}
