package actor

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// fakeLogs serves each node's lines; a node without lines fails.
type fakeLogs struct {
	lines map[string][]string
	asked []int
}

func (f *fakeLogs) TailLogs(_ context.Context, node string, n int) ([]string, error) {
	f.asked = append(f.asked, n)
	l, ok := f.lines[node]
	if !ok {
		return nil, errors.New(node + " is not enabled")
	}
	return l[max(0, len(l)-n):], nil
}

func TestLogsCommand(t *testing.T) {
	logs := &fakeLogs{lines: map[string][]string{"gfa1": {"one", "two", `said "hi", then \ left`, "four"}}}
	h := newHarness(t, harnessConfig{opts: func(o *Options) { o.Logs = logs }})
	c := h.dial()

	res := send(t, c, "logs gfa1 --tail 3")
	want := []string{"> ", `i text=gfa1,"two"`, `i text=gfa1,"said \"hi\", then \\ left"`, `i text=gfa1,"four"`, ": "}
	if got := res.lines(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("logs gfa1 --tail 3:\n got %q\nwant %q", got, want)
	}
	if v, _ := kwValues(res.replies[2], "text"); len(v) != 2 || v[1] != `said "hi", then \ left` {
		t.Errorf("the quoted line reads back as %q", v)
	}

	res = send(t, c, "logs gfa1")
	if res.final.Code != opscore.Done || logs.asked[len(logs.asked)-1] != DefaultLogLines {
		t.Errorf("logs gfa1 without --tail asked for %v lines: %q", logs.asked, res.lines())
	}

	res = send(t, c, "logs gfa2")
	if v, _ := kwValues(res.final, "error"); res.final.Code != opscore.Failed || len(v) != 2 || v[0] != "gfa2" || v[1] != "gfa2 is not enabled" {
		t.Errorf("logs of a disabled node: %q", res.lines())
	}
	for _, body := range []string{"logs", "logs gfa1 gfa2", "logs gfa1 --tail 201", "logs gfa1 --tail 0"} {
		n := len(logs.asked)
		if res := send(t, c, body); res.final.Code != opscore.Failed || len(logs.asked) != n {
			t.Errorf("%s: %q (asked %v)", body, res.lines(), logs.asked)
		}
	}
}
