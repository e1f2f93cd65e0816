package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// TestReconnectDeploysAnImagePushedUnderTheSameTag: the operators' way to
// deploy a new flicamera. A new image is pushed under the tag the bed
// runs; `reconnect -n <node>` pulls it and replaces the camera although
// its spec is unchanged, reporting each step as the original did, and
// ends once the new camera answers. The node then runs the new image, the
// other nodes are untouched, and the following resync leaves the new
// camera alone.
func TestReconnectDeploysAnImagePushedUnderTheSameTag(t *testing.T) {
	bed, e := actorEnv(t)
	node := bed.Nodes[0]
	name := "flicamera-" + node.Name
	before := map[string]string{}
	for _, n := range bed.Nodes {
		c, err := runningContainer(t, n)
		if err != nil {
			t.Fatal(err)
		}
		before[n.Name] = c.ID
	}
	restarts := nodeStatus(t, e, node.Name).Restarts

	// Push the v2 image under the tag the bed runs (and put v1 back after).
	mgr := bed.ManagerDockerHost
	manager := func(args ...string) string {
		t.Helper()
		out, err := dockerCLI(mgr, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s on the manager: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	v1ID := manager("image", "inspect", "-f", "{{.Id}}", bed.ImageRef)
	v2ID := manager("image", "inspect", "-f", "{{.Id}}", bed.ImageV2Ref)
	if v1ID == v2ID {
		t.Fatal("the bed's two images have one id")
	}
	t.Cleanup(func() {
		manager("tag", v1ID, bed.ImageRef)
		manager("push", "-q", bed.ImageRef)
		bed.Docker(t, node.Name, "pull", "-q", bed.ImageRef)
	})
	manager("tag", v2ID, bed.ImageRef)
	manager("push", "-q", bed.ImageRef)

	events := watchEvents(t, bed)
	c := dialActor(t, e)
	start := time.Now()
	replies, final := send(t, c, "reconnect -n "+node.Name, 2*time.Minute)
	took := time.Since(start)
	lines := replyLines(replies)
	if final.Code != opscore.Done {
		t.Fatalf("reconnect ended %q:\n%s", final.Line, lines)
	}
	t.Logf("reconnect -n %s took %s:\n%s", node.Name, took.Round(time.Millisecond), lines)

	// The steps, in order, with the original's wording.
	want := []string{
		fmt.Sprintf(`d text="%s: pulling latest image."`, node.Name),
		fmt.Sprintf(`d text="%s: pulled %s (image %s)`, node.Name, bed.ImageRef, strings.TrimPrefix(v2ID, "sha256:")[:12]),
		fmt.Sprintf(`w text="%s: removing running container %s."`, node.Name, name),
		fmt.Sprintf(`i text="%s: running %s from %s."`, node.Name, name, bed.ImageRef),
		fmt.Sprintf(`d text="%s: reconnected to device on port %d."`, node.Name, 19995), // the bed's camera port
	}
	at := 0
	for _, r := range replies {
		body := r.Line[strings.Index(r.Line, " ")+1:] // uid
		body = body[strings.Index(body, " ")+1:]      // cmdId
		if at < len(want) && strings.HasPrefix(body, want[at]) {
			at++
		}
	}
	if at < len(want) {
		t.Fatalf("reply lacks, in order, %q:\n%s", want[at], lines)
	}

	// It ended with the new camera answering: the actor's client is
	// connected to it, and a talk goes through at once.
	st := nodeStatus(t, e, node.Name)
	after, err := runningContainer(t, node)
	if err != nil {
		t.Fatal(err)
	}
	if after.ID == before[node.Name] || after.ImageID != v2ID || !st.DeviceConnected {
		t.Fatalf("after reconnect: container %s (before %s) from image %s (want %s), device connected %v",
			after.ID[:12], before[node.Name][:12], after.ImageID, v2ID, st.DeviceConnected)
	}
	if _, f := send(t, c, "talk -n "+node.Name+" ping", 30*time.Second); f.Code != opscore.Done {
		t.Fatalf("talk after reconnect ended %q", f.Line)
	}

	// Wait for a resync after the reconnect, judged from the node's own
	// status (resync_interval is 5 s in these tests), then check nothing
	// was restarted and the other nodes were left alone.
	ended := time.Now()
	e.eventually(30*time.Second, "a resync after the reconnect", func() error {
		if at := nodeStatus(t, e, node.Name).ObservedAt; !at.After(ended.Add(5 * time.Second)) {
			return fmt.Errorf("%s last observed at %s", node.Name, at.Format("15:04:05.000"))
		}
		return nil
	})
	if n := events.count(node.Name, "start"); n != 1 {
		t.Errorf("%s: %d container starts, want 1 (the new camera only)", node.Name, n)
	}
	if now, err := runningContainer(t, node); err != nil || now.ID != after.ID {
		t.Errorf("%s: the new camera was replaced again (%v)", node.Name, err)
	}
	if st := nodeStatus(t, e, node.Name); st.Restarts != restarts || st.CrashLoop != nil {
		t.Errorf("%s: restarts %d → %d, crash loop %+v", node.Name, restarts, st.Restarts, st.CrashLoop)
	}
	for _, n := range bed.Nodes[1:] {
		now, err := runningContainer(t, n)
		if err != nil || now.ID != before[n.Name] {
			t.Errorf("%s was touched: %v", n.Name, err)
		}
		events.mu.Lock()
		evs := slices.Clone(events.events[n.Name])
		events.mu.Unlock()
		if len(evs) != 0 {
			t.Errorf("%s: container events %v", n.Name, evs)
		}
	}
}
