package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/engine"
	"github.com/sdss/fliswarm/pkg/opscore"
	"github.com/sdss/fliswarm/test/testbed"
)

// Waits on evidence instead of time: a barrier that proves an event stream
// has delivered everything before it, and commands started in the
// background that return once the camera is seen doing the thing.

// barrierPrefix names the volumes a barrier makes.
const barrierPrefix = "fliswarm-e2e-barrier-"

// barrier lets a test know that an engine event stream has delivered every
// event the engine sent before a point: the engine delivers its events in
// order, so once the event of a volume made now arrives, every earlier
// event has arrived too. A stream's reader passes each event to observe.
type barrier struct {
	mu   sync.Mutex
	seen map[string]bool
}

// observe records a barrier volume's event and reports whether ev was one
// (the reader then skips it).
func (b *barrier) observe(ev engine.Event) bool {
	if ev.Type != "volume" || !strings.HasPrefix(ev.Name, barrierPrefix) {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[ev.Name] = true
	return true
}

// wait makes a volume on every node and returns once each one's event has
// been observed; it fails the test after 30 s.
func (b *barrier) wait(t testing.TB, nodes []testbed.Node) {
	t.Helper()
	ctx := context.Background()
	names := map[string]string{}
	for _, n := range nodes {
		eng := engineFor(t, n)
		name := fmt.Sprintf("%s%d", barrierPrefix, time.Now().UnixNano())
		if _, err := eng.CreateVolume(ctx, name, "", nil, nil); err != nil {
			t.Fatalf("%s: barrier volume: %v", n.Name, err)
		}
		t.Cleanup(func() { _ = eng.RemoveVolume(context.Background(), name, true) })
		names[n.Name] = name
	}
	deadline := time.Now().Add(30 * time.Second)
	for node, name := range names {
		for {
			b.mu.Lock()
			ok := b.seen[name]
			b.mu.Unlock()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the event stream did not deliver the barrier volume's event within 30 s", node)
			}
			time.Sleep(20 * time.Millisecond) // polling for the event
		}
	}
}

// sync returns once the log holds every event its nodes' engines sent
// before the call.
func (l *eventLog) sync(t testing.TB, bed *testbed.Bed) {
	t.Helper()
	l.barrier.wait(t, bed.Nodes)
}

// actions is a copy of node's events so far.
func (l *eventLog) actions(node string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events[node]...)
}

// anyOf is how many events of the given actions node had.
func (l *eventLog) anyOf(node string, actions ...string) int {
	n := 0
	for _, a := range actions {
		n += l.count(node, a)
	}
	return n
}

// sent is the outcome of a command sent in the background.
type sent struct {
	lines []opscore.Reply
	final opscore.Reply
	err   error
	end   time.Time
}

// sendSeen sends body on c in the background and returns once a reply for
// which seen holds has arrived: the evidence that the command is under
// way. It fails the test when the command ends first or no such reply
// comes within 30 s. The command's outcome comes on the channel.
func sendSeen(t *testing.T, c *opscore.Client, body string, timeout time.Duration, seen func(opscore.Reply) bool) <-chan sent {
	t.Helper()
	out := make(chan sent, 1)
	under := make(chan struct{})
	var once sync.Once
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var mu sync.Mutex
		var lines []opscore.Reply
		final, err := c.Send(ctx, body, func(r opscore.Reply) {
			mu.Lock()
			lines = append(lines, r)
			mu.Unlock()
			if seen(r) {
				once.Do(func() { close(under) })
			}
		})
		mu.Lock()
		out <- sent{lines: lines, final: final, err: err, end: time.Now()}
		mu.Unlock()
	}()
	select {
	case <-under:
		return out
	case r := <-out:
		t.Fatalf("%q ended before it was seen under way: %v %v\n%s", body, r.final.Line, r.err, replyLines(r.lines))
	case <-time.After(30 * time.Second):
		t.Fatalf("%q not seen under way within 30 s", body)
	}
	return nil
}

// integrating tells the relayed reply saying that node's camera is
// exposing (camera values are relayed with the node's name first).
func integrating(node string) func(opscore.Reply) bool {
	return func(r opscore.Reply) bool {
		return strings.Contains(r.Line, "exposure_state="+node+",") && strings.Contains(r.Line, "integrating")
	}
}
