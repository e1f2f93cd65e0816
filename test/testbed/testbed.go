package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvVar is the environment variable that enables end-to-end tests. When it
// is not "1", Ensure skips the test.
const EnvVar = "FLISWARM_E2E"

// Timeouts for hack/testbed commands. Bringing the bed up from a fresh
// machine installs Docker and builds the registry, which takes minutes.
const (
	upTimeout      = 20 * time.Minute
	commandTimeout = 3 * time.Minute
	dockerTimeout  = 2 * time.Minute
)

// Node is one simulated node computer.
type Node struct {
	// Name is the node's name in the fliswarm configuration (gfa1, ...).
	Name string
	// IP is the node's address on the bed's bridge; the camera listens on
	// IP:19995 once a flicamera container runs there.
	IP string
	// DockerHost is the address of the node's Docker Engine as fliswarm
	// reaches it over the network: tcp://IP:2375, or tcp://IP:2376 (TLS)
	// or ssh://root@IP/<socket> on the bed's TLS and ssh nodes (open it
	// with Bed.EngineOptions).
	DockerHost string
	// Kind is KindPlain, KindTLS or KindSSH.
	Kind string
	// TLSCertPath, SSHIdentity and SSHKnownHosts are the bed's TLS and
	// ssh material, as on Bed (see EngineOptions).
	TLSCertPath, SSHIdentity, SSHKnownHosts string
	// Socket is the engine's local unix socket (unix:///...), the node's
	// "console": it still answers while the node is partitioned.
	Socket string
	// Netns is the name of the node's network namespace (fs-<name>).
	Netns string
}

// Bed describes a running test bed.
type Bed struct {
	// Root is the repository root (the directory holding go.mod).
	Root string
	// Script is the path of hack/testbed.
	Script string
	// Dir is the bed's state directory (TESTBED_DIR).
	Dir string
	// RunDir is the bed's runtime directory (sockets, pid files).
	RunDir string
	// ConfigPath is the fliswarm configuration file describing the bed.
	ConfigPath string
	// DataDir is the directory every node's data volume binds; cameras
	// write their FITS files under it.
	DataDir string
	// Registry is the registry address, host:port (10.213.0.1:5000).
	Registry string
	// Image is the flicamera image as the configuration names it, without
	// the registry: sdss/flicamera:latest.
	Image string
	// ImageV2 is a second image, the same program with another image ID,
	// for rollout tests: sdss/flicamera:v2.
	ImageV2 string
	// ImageRef is Image in the registry: Registry + "/" + Image.
	ImageRef string
	// ImageV2Ref is ImageV2 in the registry: Registry + "/" + ImageV2.
	ImageV2Ref string
	// ManagerDockerHost is the manager engine used to build images.
	ManagerDockerHost string
	// Nodes are the nodes, in configuration order.
	Nodes []Node
	// TLSCertPath is the client's DOCKER_CERT_PATH directory (ca.pem,
	// cert.pem, key.pem) for the TLS nodes; "" when there are none.
	TLSCertPath string
	// SSHIdentity and SSHKnownHosts are root's private key and the
	// known_hosts file for the ssh nodes; "" when there are none.
	SSHIdentity, SSHKnownHosts string
}

var (
	mu      sync.Mutex
	current *Bed
	upDone  bool
)

// Ensure returns the test bed, bringing it up if needed. It skips the test
// unless FLISWARM_E2E=1, and fails it when the bed cannot be brought up.
//
// The first call in a test binary runs `hack/testbed up` (for a healthy bed
// this only rebuilds and pushes the images, a few seconds), so the images
// always hold the current cmd/flicamera-sim. Later calls run `hack/testbed
// check` and repair the bed with `up` only when the check fails.
func Ensure(t testing.TB) *Bed {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skipf("end-to-end test: needs the test bed of real Docker Engines; run `make e2e` (or `make test`), "+
			"or as root: %s=1 go test -p 1 ./test/...", EnvVar)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1 but not running as root: the test bed needs root (network namespaces, Docker Engines)", EnvVar)
	}
	mu.Lock()
	defer mu.Unlock()

	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	script := filepath.Join(root, "hack", "testbed")

	healthy := false
	if upDone {
		_, _, err := runScript(script, root, commandTimeout, "check")
		healthy = err == nil
	}
	if !healthy {
		start := time.Now()
		if _, stderr, err := runScript(script, root, upTimeout, "up"); err != nil {
			t.Fatalf("testbed: hack/testbed up failed: %v\n%s", err, stderr)
		}
		t.Logf("testbed: hack/testbed up took %s", time.Since(start).Round(100*time.Millisecond))
		upDone = true
		current = nil
	}
	if current == nil {
		out, stderr, err := runScript(script, root, commandTimeout, "env")
		if err != nil {
			t.Fatalf("testbed: hack/testbed env failed: %v\n%s", err, stderr)
		}
		b, err := parseEnv(out)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		b.Root, b.Script = root, script
		current = b
	}
	return current
}

// RepoRoot returns the repository root: the first directory at or above the
// working directory that holds go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if st, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !st.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find repository root: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Node returns the node with the given name, failing the test if there is none.
func (b *Bed) Node(t testing.TB, name string) Node {
	t.Helper()
	for _, n := range b.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("testbed: no node %q (nodes: %v)", name, b.nodeNames())
	return Node{}
}

func (b *Bed) nodeNames() []string {
	names := make([]string, len(b.Nodes))
	for i, n := range b.Nodes {
		names[i] = n.Name
	}
	return names
}

// Testbed runs `hack/testbed ARGS...` and returns its trimmed standard
// output, failing the test on error.
func (b *Bed) Testbed(t testing.TB, args ...string) string {
	t.Helper()
	out, stderr, err := runScript(b.Script, b.Root, commandTimeout, args...)
	if err != nil {
		t.Fatalf("testbed: hack/testbed %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(out)
}

// Partition cuts the node off the network (its link goes down): ping and
// Docker at its address stop answering, though everything on it runs on. A
// cleanup heals it at the end of the test.
func (b *Bed) Partition(t testing.TB, node string) {
	t.Helper()
	b.Node(t, node)
	t.Cleanup(func() { b.cleanup(t, "heal", node) })
	b.Testbed(t, "partition", node)
}

// Heal reconnects a partitioned node.
func (b *Bed) Heal(t testing.TB, node string) {
	t.Helper()
	b.Node(t, node)
	b.Testbed(t, "heal", node)
}

// KillEngine kills the node's dockerd and containerd with SIGKILL. The node
// stays pingable, its Docker API stops answering, and its containers keep
// running under their shims (a camera keeps answering on its port). A
// cleanup starts the engine again at the end of the test.
func (b *Bed) KillEngine(t testing.TB, node string) {
	t.Helper()
	b.Node(t, node)
	t.Cleanup(func() { b.cleanup(t, "start-engine", node) })
	b.Testbed(t, "kill-engine", node)
}

// StartEngine starts the node's engine again and waits until it answers.
// Without live-restore (Docker's default, as on the observatory's nodes) the
// new dockerd stops the containers it finds still running from before the
// kill, then restarts those whose restart policy asks for it.
func (b *Bed) StartEngine(t testing.TB, node string) {
	t.Helper()
	b.Node(t, node)
	b.Testbed(t, "start-engine", node)
}

// Crash kills the main process of the node's flicamera container (the one
// named flicamera-<node>, or any labelled org.sdss.fliswarm.node=<node>)
// with SIGKILL. It fails the test when no such container is running.
func (b *Bed) Crash(t testing.TB, node string) {
	t.Helper()
	b.Node(t, node)
	b.Testbed(t, "crash", node)
}

// StopRegistry stops the registry; pulls fail until StartRegistry. A cleanup
// starts it again at the end of the test.
func (b *Bed) StopRegistry(t testing.TB) {
	t.Helper()
	t.Cleanup(func() { b.cleanup(t, "start-registry") })
	b.Testbed(t, "stop-registry")
}

// StartRegistry starts the registry and waits until it answers.
func (b *Bed) StartRegistry(t testing.TB) {
	t.Helper()
	b.Testbed(t, "start-registry")
}

// cleanup runs an undo command at the end of a test; a failure is reported
// but the other cleanups still run.
func (b *Bed) cleanup(t testing.TB, args ...string) {
	if _, stderr, err := runScript(b.Script, b.Root, commandTimeout, args...); err != nil {
		t.Errorf("testbed: cleanup hack/testbed %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
}

// Docker runs the docker CLI against the node's engine through its unix
// socket and returns the trimmed standard output, failing the test on error.
func (b *Bed) Docker(t testing.TB, node string, args ...string) string {
	t.Helper()
	out, err := b.TryDocker(node, args...)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	return out
}

// TryDocker is Docker for commands that may fail: it returns the trimmed
// standard output and an error that includes the standard error.
func (b *Bed) TryDocker(node string, args ...string) (string, error) {
	var n *Node
	for i := range b.Nodes {
		if b.Nodes[i].Name == node {
			n = &b.Nodes[i]
		}
	}
	if n == nil {
		return "", fmt.Errorf("docker on %s: no such node (nodes: %v)", node, b.nodeNames())
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", n.Socket}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CLI_HINTS=false")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("docker on %s: %s: %w: %s",
			node, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// runScript runs hack/testbed and returns its standard output and error.
func runScript(script, root string, timeout time.Duration, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	cmd.Dir = root
	// The script starts daemons that must not keep our pipes open; it closes
	// their descriptors, and WaitDelay guards against any that do not.
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %s)", err, timeout)
		}
		return out.String(), errb.String(), err
	}
	return out.String(), errb.String(), nil
}

// parseEnv builds a Bed from the output of `hack/testbed env`: lines of
// the form export KEY='value'.
func parseEnv(out string) (*Bed, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			return nil, fmt.Errorf("hack/testbed env: unexpected line %q", line)
		}
		key, val, ok := strings.Cut(rest, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("hack/testbed env: unexpected line %q", line)
		}
		if len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'' {
			val = val[1 : len(val)-1]
		}
		vars[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hack/testbed env: %w", err)
	}

	var missing []string
	get := func(key string) string {
		v, ok := vars[key]
		if !ok || v == "" {
			missing = append(missing, key)
		}
		return v
	}
	b := &Bed{
		Dir:               get("TESTBED_DIR"),
		RunDir:            get("TESTBED_RUN_DIR"),
		ConfigPath:        get("TESTBED_CONFIG"),
		DataDir:           get("TESTBED_DATA_DIR"),
		Registry:          get("TESTBED_REGISTRY"),
		Image:             get("TESTBED_IMAGE"),
		ImageV2:           get("TESTBED_IMAGE_V2"),
		ImageRef:          get("TESTBED_IMAGE_REF"),
		ImageV2Ref:        get("TESTBED_IMAGE_V2_REF"),
		ManagerDockerHost: get("TESTBED_MANAGER_DOCKER_HOST"),
	}
	for _, name := range strings.Fields(get("TESTBED_NODES")) {
		key := "TESTBED_NODE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
		b.Nodes = append(b.Nodes, Node{
			Name:       name,
			IP:         get(key + "IP"),
			DockerHost: get(key + "DOCKER_HOST"),
			Socket:     get(key + "DOCKER_SOCK"),
			Netns:      get(key + "NETNS"),
			Kind:       kindOf(vars[key+"KIND"]),
		})
	}
	b.TLSCertPath, b.SSHIdentity, b.SSHKnownHosts = vars["TESTBED_TLS_CERT_PATH"], vars["TESTBED_SSH_IDENTITY"], vars["TESTBED_SSH_KNOWN_HOSTS"]
	b.setCredentials()
	if len(missing) > 0 {
		return nil, fmt.Errorf("hack/testbed env: missing %s", strings.Join(missing, ", "))
	}
	return b, nil
}
