package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// fliswarm events against a real daemon whose only node's engine is a
// closed port: what it recorded, a follower that sees a rejected edit,
// and the clear errors.
func TestEventsFromTheDaemon(t *testing.T) {
	b := newBed(t)
	if code, _, errOut := b.run("events"); code != 4 || !strings.Contains(errOut, "no daemon is running") {
		t.Fatalf("events without a daemon: exit %d, %q", code, errOut)
	}
	if code, _, errOut := b.run("start"); code != 0 {
		t.Fatalf("start: exit %d, %s%s", code, errOut, b.daemonOutput())
	}
	defer b.run("stop")

	b.waitFor("n1's engine down in its events", func() error {
		code, out, errOut := b.run("events", "n1")
		if code != 0 {
			t.Fatalf("events n1: exit %d, %s", code, errOut)
		}
		if !strings.Contains(out, "Warning  EngineDown") || !strings.HasPrefix(out, "LAST SEEN") {
			return fmt.Errorf("no EngineDown yet:\n%s", out)
		}
		return nil
	})
	_, out, _ := b.run("events", "--since", "1h")
	if !strings.Contains(out, "ConfigAccepted") || !strings.Contains(out, "EngineDown") {
		t.Fatalf("every event in the last hour:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"events", "nope"}, 1, "nope is not configured"},
		{[]string{"events", "--since", "yesterday"}, 2, "neither a time"},
		{[]string{"events", "-o", "yaml"}, 2, "unknown output"},
	} {
		code, _, errOut := b.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}

	// A follower sees a rejected configuration edit as it happens.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := b.command(ctx, "events", "-f", "-o", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() { // the events kept come first
		t.Fatal("events -f printed nothing")
	}
	good, err := os.ReadFile(b.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.config, append(good, []byte("max_unavailable: -3\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		var ev v1.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("a bad JSON line %q: %v", sc.Text(), err)
		}
		if ev.Reason == v1.ReasonConfigRejected {
			if !strings.Contains(ev.Message, "max_unavailable") || ev.Type != v1.EventWarning || ev.Node != "" {
				t.Fatalf("the rejection: %+v", ev)
			}
			return
		}
	}
	t.Fatalf("the follower did not see the rejected edit (%v)%s", sc.Err(), b.daemonOutput())
}
