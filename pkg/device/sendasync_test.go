package device

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/clu"
)

// sendNow runs SendAsync; done's outcome comes on the channel.
func sendNow(t *testing.T, c *Client, ctx context.Context, cmd string, timeout time.Duration, rec *recorder) <-chan sendOut {
	t.Helper()
	ch := make(chan sendOut, 2)
	var seen func() int
	on := func(clu.Reply) {}
	if rec != nil {
		on, seen = rec.add, func() int { return len(rec.get()) }
	}
	err := c.SendAsync(ctx, cmd, timeout, on, func(res Result, err error) {
		if seen != nil && res.Final.Header.MessageCode != "" && seen() == 0 {
			t.Error("done came before the replies")
		}
		ch <- sendOut{res, err}
	})
	if err != nil {
		t.Fatalf("SendAsync(%q): %v", cmd, err)
	}
	return ch
}

// SendAsync reports what SendWithTimeout would return, through done.
func TestSendAsyncOutcomes(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	c := startClient(t, cam.addr, Options{InlineReplies: true, InitialBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx := context.Background()

	var rec recorder
	ch := sendNow(t, c, ctx, "status", 0, &rec)
	got := cam.next()
	got.s.reply(got.id, clu.CodeRunning, nil)
	got.s.reply(got.id, clu.CodeDone, clu.Object{{Key: "text", Value: "ok"}})
	if out := wait(t, ch); out.err != nil || !out.res.OK() || out.res.ID != got.id || codes(rec.get()) != ">:" {
		t.Fatalf("done = %+v, %v after %q; want done after > and :", out.res, out.err, codes(rec.get()))
	}

	ch = sendNow(t, c, ctx, "expose 5", 20*time.Millisecond, nil)
	cam.next()
	if out := wait(t, ch); !errors.Is(out.err, ErrTimeout) || !strings.Contains(out.err.Error(), `camera gfa1: command "expose 5"`) {
		t.Fatalf("after the timeout: %v", out.err)
	}

	ch = sendNow(t, c, ctx, "status", 0, nil)
	cam.next()
	cam.stop()
	if out := wait(t, ch); !errors.Is(out.err, ErrDisconnected) || !strings.Contains(out.err.Error(), `camera gfa1 disconnected while running "status"`) {
		t.Fatalf("after the drop: %v", out.err)
	}
	eventually(t, "disconnected", func() bool { return !c.Connected() })
	never := func(Result, error) { t.Error("done called for a command not sent") }
	if err := c.SendAsync(ctx, "status", 0, nil, never); !errors.Is(err, ErrNotConnected) {
		t.Errorf("SendAsync while disconnected: %v, want ErrNotConnected", err)
	}
	if err := c.SendAsync(ctx, "a\nb", 0, nil, never); err == nil || !strings.Contains(err.Error(), "line break") {
		t.Errorf("SendAsync of two lines: %v", err)
	}
}

// SendAsync needs replies delivered by the reader.
func TestSendAsyncNeedsInlineReplies(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", true)
	c := startClient(t, cam.addr, Options{})
	err := c.SendAsync(context.Background(), "status", 0, nil, func(Result, error) { t.Error("done called") })
	if err == nil || !strings.Contains(err.Error(), "InlineReplies") {
		t.Fatalf("SendAsync without InlineReplies: %v", err)
	}
}
