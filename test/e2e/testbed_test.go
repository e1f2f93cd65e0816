package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/test/testbed"
)

// These tests prove the test bed itself: that every node is a separate,
// reachable Docker Engine that can pull the flicamera image from the bed's
// registry and run it the way fliswarm does, and that the faults the bed
// injects do what they claim. They use the Docker SDK and the camera's
// protocol directly, not fliswarm.

const (
	bedCameraPort = 19995
	bedE2ELabel   = "org.sdss.fliswarm.testbed.e2e"
	bedNodeLabel  = "org.sdss.fliswarm.node"
)

// engine returns an SDK client for a node's engine at its network address.
func bedEngine(t *testing.T, n testbed.Node) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(n.DockerHost))
	if err != nil {
		t.Fatalf("client for %s at %s: %v", n.Name, n.DockerHost, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func TestBedEnginesAnswerPing(t *testing.T) {
	bed := testbed.Ensure(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ids := map[string]string{}
	for _, n := range bed.Nodes {
		cli := bedEngine(t, n)
		ping, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		if err != nil {
			t.Fatalf("%s: ping %s: %v", n.Name, n.DockerHost, err)
		}
		if ping.APIVersion == "" {
			t.Errorf("%s: ping reported no API version", n.Name)
		}
		if got := cli.ClientVersion(); got != ping.APIVersion {
			t.Errorf("%s: negotiated API version %s, engine speaks %s", n.Name, got, ping.APIVersion)
		}
		info, err := cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			t.Fatalf("%s: info: %v", n.Name, err)
		}
		if info.Info.DefaultRuntime != "sandbox" {
			t.Errorf("%s: default runtime %q, want the bed's wrapper \"sandbox\"", n.Name, info.Info.DefaultRuntime)
		}
		if other, dup := ids[info.Info.ID]; dup {
			t.Errorf("%s and %s are the same engine (ID %s)", other, n.Name, info.Info.ID)
		}
		ids[info.Info.ID] = n.Name
	}
}

func TestBedImagesDiffer(t *testing.T) {
	bed := testbed.Ensure(t)
	n := bed.Nodes[0]
	cli := bedEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var imageIDs []string
	for _, ref := range []string{bed.ImageRef, bed.ImageV2Ref} {
		bedPull(ctx, t, cli, ref)
		img, err := cli.ImageInspect(ctx, ref)
		if err != nil {
			t.Fatalf("inspect %s on %s: %v", ref, n.Name, err)
		}
		imageIDs = append(imageIDs, img.ID)
	}
	if imageIDs[0] == imageIDs[1] {
		t.Errorf("%s and %s have the same image ID %s; rollout tests need two", bed.ImageRef, bed.ImageV2Ref, imageIDs[0])
	}
}

func TestBedCameraRunsOnEveryNode(t *testing.T) {
	bed := testbed.Ensure(t)
	for _, n := range bed.Nodes {
		t.Run(n.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cli := bedEngine(t, n)
			bedRunCamera(ctx, t, bed, cli, n, "testbed-e2e-"+n.Name, nil)
			addr := net.JoinHostPort(n.IP, strconv.Itoa(bedCameraPort))
			cam := bedDialCamera(ctx, t, addr)

			replies := cam.command(t, 1, "status")
			status := bedFindKeyword(replies, "status")
			if status == nil {
				t.Fatalf("no status keyword in the replies to status: %v", replies)
			}
			if status.Header.Sender != n.Name {
				t.Errorf("status sender %q, want the node name %q", status.Header.Sender, n.Name)
			}
			if status.Header.MessageCode != clu.CodeInfo {
				t.Errorf("status code %q, want %q", status.Header.MessageCode, clu.CodeInfo)
			}
			if v, _ := status.Data.Get("status"); v == nil {
				t.Errorf("status keyword without values")
			}

			replies = cam.command(t, 2, "expose 0.1")
			fn := bedFindKeyword(replies, "filename")
			if fn == nil {
				t.Fatalf("no filename keyword in the replies to expose: %v", replies)
			}
			path := bedFilename(t, fn)
			t.Cleanup(func() { _ = os.Remove(path) })
			rel, err := filepath.Rel(bed.DataDir, path)
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("image %s was not written under the shared data dir %s", path, bed.DataDir)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("image written in the container is not in the shared data dir: %v", err)
			}
			if !bytes.HasPrefix(data, []byte("SIMPLE  =")) || len(data)%2880 != 0 {
				t.Errorf("%s is not a FITS file (%d bytes, starts %q)", path, len(data), data[:min(len(data), 10)])
			}
		})
	}
}

func TestBedPartitionAndHeal(t *testing.T) {
	bed := testbed.Ensure(t)
	n := bed.Nodes[len(bed.Nodes)-1]
	cli := bedEngine(t, n)

	if err := bedPing(cli); err != nil {
		t.Fatalf("%s: engine not reachable before the partition: %v", n.Name, err)
	}
	bed.Partition(t, n.Name)
	bedWaitFor(t, 20*time.Second, n.Name+" unreachable after partition", func() bool { return bedPing(cli) != nil })
	// The node itself runs on: its console still reaches the engine.
	if out := bed.Docker(t, n.Name, "version", "--format", "{{.Server.APIVersion}}"); out == "" {
		t.Errorf("%s: engine silent on its console during the partition", n.Name)
	}
	// Other nodes are not affected.
	for _, other := range bed.Nodes[:len(bed.Nodes)-1] {
		if err := bedPing(bedEngine(t, other)); err != nil {
			t.Errorf("%s unreachable while only %s is partitioned: %v", other.Name, n.Name, err)
		}
	}
	bed.Heal(t, n.Name)
	bedWaitFor(t, 30*time.Second, n.Name+" reachable after heal", func() bool { return bedPing(cli) == nil })
}

func TestBedFaults(t *testing.T) {
	bed := testbed.Ensure(t)
	n := bed.Nodes[0]
	cli := bedEngine(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	name := "testbed-e2e-crash-" + n.Name
	addr := net.JoinHostPort(n.IP, strconv.Itoa(bedCameraPort))

	id := bedRunCamera(ctx, t, bed, cli, n, name, map[string]string{bedNodeLabel: n.Name})

	t.Run("crash", func(t *testing.T) {
		bed.Crash(t, n.Name)
		bedWaitFor(t, 30*time.Second, "container stopped after crash", func() bool {
			st := bedInspect(ctx, t, cli, id).State
			return !st.Running && st.ExitCode == 137
		})
	})

	t.Run("kill-engine", func(t *testing.T) {
		if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("restart the camera: %v", err)
		}
		bedWaitPort(ctx, t, addr)
		bed.KillEngine(t, n.Name)
		if err := bedPing(cli); err == nil {
			t.Fatalf("%s: engine still answers after kill-engine", n.Name)
		}
		// The container's process outlives its engine.
		cam := bedDialCamera(ctx, t, addr)
		if st := bedFindKeyword(cam.command(t, 1, "status"), "status"); st == nil {
			t.Errorf("camera silent while its engine is dead")
		}
		bed.StartEngine(t, n.Name)
		if err := bedPing(cli); err != nil {
			t.Fatalf("%s: engine does not answer after start-engine: %v", n.Name, err)
		}
		// Without live-restore the new engine stops what it finds running.
		bedWaitFor(t, 30*time.Second, "leftover container stopped by the restarted engine", func() bool {
			return !bedInspect(ctx, t, cli, id).State.Running
		})
	})

	t.Run("registry", func(t *testing.T) {
		url := "http://" + bed.Registry + "/v2/"
		bed.StopRegistry(t)
		if err := bedHTTPGet(url); err == nil {
			t.Fatalf("registry still answers after stop-registry")
		}
		bed.StartRegistry(t)
		if err := bedHTTPGet(url); err != nil {
			t.Fatalf("registry does not answer after start-registry: %v", err)
		}
	})
}

// runCamera pulls the image on the node and runs it as fliswarm would:
// privileged, host network, the shared data volume at its device path. The
// container and volume are removed when the test ends. It returns the
// container ID once the camera's port accepts connections.
func bedRunCamera(ctx context.Context, t *testing.T, bed *testbed.Bed, cli *client.Client, n testbed.Node,
	name string, labels map[string]string) string {
	t.Helper()
	bedPull(ctx, t, cli, bed.ImageRef)

	vol := name + "-data"
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{
		Name:       vol,
		Driver:     "local",
		DriverOpts: map[string]string{"type": "none", "o": "bind", "device": bed.DataDir},
		Labels:     map[string]string{bedE2ELabel: "true"},
	}); err != nil {
		t.Fatalf("%s: create volume: %v", n.Name, err)
	}
	all := map[string]string{bedE2ELabel: "true"}
	for k, v := range labels {
		all[k] = v
	}
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: bed.ImageRef,
			Env: []string{
				"ACTOR_NAME=" + n.Name,
				"FLICAMERA_DATA_DIR=" + bed.DataDir,
				"FLICAMERA_EXPOSURE_SCALE=0.2",
			},
			Labels: all,
		},
		HostConfig: &container.HostConfig{
			Privileged:  true,
			NetworkMode: "host",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: bed.DataDir}},
		},
	})
	if err != nil {
		t.Fatalf("%s: create container: %v", n.Name, err)
	}
	t.Cleanup(func() {
		// The engine may have been killed and restarted meanwhile; use a fresh context.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("%s: remove container %s: %v", n.Name, name, err)
		}
		if _, err := cli.VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true}); err != nil {
			t.Errorf("%s: remove volume %s: %v", n.Name, vol, err)
		}
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("%s: start container: %v", n.Name, err)
	}
	if c := bedInspect(ctx, t, cli, res.ID); !c.HostConfig.Privileged || !c.HostConfig.NetworkMode.IsHost() {
		t.Fatalf("%s: container is not privileged with host networking", n.Name)
	}
	bedWaitPort(ctx, t, net.JoinHostPort(n.IP, strconv.Itoa(bedCameraPort)))
	return res.ID
}

func bedPull(ctx context.Context, t *testing.T, cli *client.Client, ref string) {
	t.Helper()
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	if err := resp.Wait(ctx); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

func bedInspect(ctx context.Context, t *testing.T, cli *client.Client, id string) container.InspectResponse {
	t.Helper()
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", id, err)
	}
	if res.Container.State == nil || res.Container.HostConfig == nil {
		t.Fatalf("inspect %s: incomplete answer", id)
	}
	return res.Container
}

func bedPing(cli *client.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	return err
}

func bedHTTPGet(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// waitFor polls cond until it holds or the timeout passes.
func bedWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func bedWaitPort(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	bedWaitFor(t, time.Minute, "camera port "+addr, func() bool {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// camera is a minimal client of the CLU JSON protocol.
type bedCamera struct {
	conn net.Conn
	r    *bufio.Reader
}

func bedDialCamera(ctx context.Context, t *testing.T, addr string) *bedCamera {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("connect to the camera at %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &bedCamera{conn: conn, r: bufio.NewReader(conn)}
}

// command sends one command and returns its replies, up to and including
// the terminal one, which must be ":".
func (c *bedCamera) command(t *testing.T, id int, cmd string) []clu.Reply {
	t.Helper()
	if err := c.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	if _, err := c.conn.Write(clu.FormatCommand(id, cmd)); err != nil {
		t.Fatalf("send %q: %v", cmd, err)
	}
	var replies []clu.Reply
	for {
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("reading replies to %q: %v (so far %v)", cmd, err, replies)
		}
		r, err := clu.ParseReply(line)
		if errors.Is(err, clu.ErrNoHeader) {
			continue
		}
		if err != nil {
			t.Fatalf("reply to %q: %v: %q", cmd, err, line)
		}
		if r.Header.CommandID != id {
			continue // a broadcast or another command
		}
		replies = append(replies, r)
		if clu.IsTerminal(r.Header.MessageCode) {
			if r.Header.MessageCode != clu.CodeDone {
				t.Fatalf("%q failed: %s", cmd, line)
			}
			return replies
		}
	}
}

func bedFindKeyword(replies []clu.Reply, key string) *clu.Reply {
	for i := range replies {
		if _, ok := replies[i].Data.Get(key); ok {
			return &replies[i]
		}
	}
	return nil
}

// filenameOf reads filename={camera, filename}.
func bedFilename(t *testing.T, r *clu.Reply) string {
	t.Helper()
	v, _ := r.Data.Get("filename")
	switch fv := v.(type) {
	case clu.Object:
		if p, ok := fv.Get("filename"); ok {
			if s, ok := p.(string); ok && s != "" {
				return s
			}
		}
	case []any:
		if len(fv) == 2 {
			if s, ok := fv[1].(string); ok && s != "" {
				return s
			}
		}
	}
	t.Fatalf("unexpected filename value %#v", v)
	return ""
}
