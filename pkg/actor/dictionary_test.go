package actor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/opscore"
)

// dictEntry is how many values a keyword of the dictionary takes.
type dictEntry struct {
	min, max int // max < 0: any number
}

// dictionary is the keyword table of the product (keywords.go: the
// dictionary tron decodes fliswarm with, and fliswarm's additions), which
// get_schema and keyword answer from.
var dictionary = func() map[string]dictEntry {
	m := map[string]dictEntry{}
	for _, k := range Keywords {
		m[k.Name] = dictEntry{k.Min, k.Max()}
	}
	return m
}()

// checkDictionary checks one reply line against the dictionary: the line
// parses as opscore, and each keyword fliswarm writes itself is in the
// dictionary with a value count it allows. A keyword relayed from a camera
// (its first value is the node's name) keeps the camera's own shape, but
// dictionary keywords still need at least their minimum, and error from a
// camera may carry the camera's {camera, error} object (3 values).
func checkDictionary(t *testing.T, nodes []string, line string) {
	t.Helper()
	r, err := opscore.ParseReply(line)
	if err != nil {
		t.Errorf("line does not parse: %q: %v", line, err)
		return
	}
	for _, k := range r.Keywords {
		if strings.EqualFold(k.Name, "raw") {
			t.Errorf("reserved keyword raw in %q", line)
			continue
		}
		relayed := len(k.Values) > 0 && slices.Contains(nodes, fmt.Sprint(k.Values[0])) &&
			k.Name != "node" && k.Name != "container" && k.Name != "volume" && k.Name != "enabledNodes" && k.Name != "filename"
		e, known := dictionary[k.Name]
		n := len(k.Values)
		switch {
		case !known && relayed:
		case !known:
			t.Errorf("keyword %s is not in the dictionary: %q", k.Name, line)
		case relayed && k.Name == "error" && n == 3:
		case relayed && k.Name == "help" && n == 2:
		case relayed && k.Name == "text":
		case n < e.min || (e.max >= 0 && n > e.max):
			t.Errorf("keyword %s has %d values, the dictionary wants %d..%d: %q", k.Name, n, e.min, e.max, line)
		}
		if k.Name == "error" && n >= 1 {
			first := fmt.Sprint(k.Values[0])
			if first != "fliswarm" && !slices.Contains(nodes, first) {
				t.Errorf("error's first value %q is neither a node nor the actor: %q", first, line)
			}
		}
	}
}

// TestEveryReplyMatchesTheDictionary drives every command and its failure
// paths, and checks every line any user receives (replies and broadcasts)
// against the keyword dictionary.
func TestEveryReplyMatchesTheDictionary(t *testing.T) {
	hub := &fakeHubFunc{}
	var convergeErr sync.Mutex
	failConverge := false
	h := newHarness(t, harnessConfig{
		opts: func(o *Options) {
			o.Hub = hub
			o.DeviceWait = 2 * waitFor
			o.Exec = func(ctx context.Context, name string, args ...string) ([]byte, int, error) {
				if strings.Contains(strings.Join(args, " "), "127.0.0.1") && len(args) > 4 && strings.HasPrefix(args[4], "bad") {
					return []byte("Permission denied\n"), 1, nil
				}
				return nil, 0, nil
			}
		},
		spec: func(s *v1.Swarm) {
			s.Power = &v1.Power{Actor: "jaeger", Command: v1.PowerCommand{PowerOn: "on", PowerOff: "off"}}
			n := s.Nodes["gfa2"]
			n.User = "bad"
			s.Nodes["gfa2"] = n
		},
	})
	h.rec.onConverge = func(ctx context.Context, nodes []string, opts v1.ConvergeOptions) map[string]error {
		convergeErr.Lock()
		defer convergeErr.Unlock()
		out := map[string]error{}
		for _, n := range nodes {
			if failConverge && n == "gfa2" {
				out[n] = errors.New("cannot pull image")
			} else {
				out[n] = nil
			}
		}
		return out
	}

	var mu sync.Mutex
	var all []string
	record := func(r opscore.Reply) {
		mu.Lock()
		all = append(all, r.Line)
		mu.Unlock()
	}
	h.dial(opscore.WithUnsolicited(record)) // broadcasts, as another user sees them
	c := h.dial(opscore.WithUnsolicited(record))
	send := func(t *testing.T, c *opscore.Client, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitFor)
		defer cancel()
		if _, err := c.Send(ctx, body, record); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	glob := h.dataDir + "/*/*/*.fits"

	bodies := []string{
		"status", "status extra", "status --bogus",
		"talk status", "talk expose 0.1", "talk -n gfa1 expose --count 2 0.01", "talk -n gfa1 expose --bogus",
		"talk -n nope status", "talk -c nocat status", "talk", "talk --help", "talk -n gfa1 frobnicate",
		"talk -n gfa1 temperature", "talk -n gfa1 help",
		"reconnect -n gfa1", "reconnect -n nope", "reconnect --bogus",
		"disable gfa2 nope", "enable gfa2 nope", "disable --all", "enable --all",
		"reboot -n gfa1,gfa2", "reboot --hard -n gfa1", "reboot extra",
		"simulate", "simulate a b", "simulate --delay -1 x", "simulate /nonexistent/*.fits", "simulate --stop",
		"help", "help talk", "help nope", "help a b", "reboot --help",
		"frobnicate --now", "ping", "version", "get_schema", "keyword hub", "keyword text", "keyword nope", "keyword",
	}
	for _, b := range bodies {
		send(t, c, b)
	}
	// A simulation, stopped.
	send(t, c, "talk -n gfa1 expose 0.01") // an image to simulate with
	simDone := make(chan struct{})
	go func() {
		defer close(simDone)
		send(t, c, "simulate --delay 0.05 "+glob)
	}()
	waitUntil(t, "simulation running", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(all, func(l string) bool { return strings.Contains(l, " i filename=gfa1,gfa1,") })
	})
	send(t, c, "simulate --stop")
	<-simDone
	// A failed reconnect, a hub failure, a configuration rejection, a
	// camera that went away, a camera disconnected mid-command.
	convergeErr.Lock()
	failConverge = true
	convergeErr.Unlock()
	send(t, c, "reconnect -n gfa2")
	hub.fail = true
	send(t, c, "reboot --hard -n gfa1")
	h.actor.SetConfigError("nodes.gfa2.port: must be from 1 to 65535")
	send(t, c, "status")
	h.cams["fvc"].stop()
	h.waitDevice("fvc", false)
	send(t, c, "talk status")
	send(t, c, "talk -n fvc status")
	hang := make(chan struct{})
	go func() {
		defer close(hang)
		send(t, c, "talk -n gfa2 sim-hang")
	}()
	waitUntil(t, "sim-hang sent", func() bool { return h.actor.device("gfa2").InFlight() > 0 })
	h.actor.device("gfa2").Disconnect()
	<-hang

	mu.Lock()
	defer mu.Unlock()
	if len(all) < 200 {
		t.Fatalf("only %d lines seen", len(all))
	}
	for _, l := range all {
		checkDictionary(t, nodeNames, l)
	}
}

// fakeHubFunc is a Hub that answers every command with `:` (or `f` when
// fail is set).
type fakeHubFunc struct{ fail bool }

func (f *fakeHubFunc) Command(ctx context.Context, target, command string) (HubReply, error) {
	if f.fail {
		return HubReply{Actor: target, Code: opscore.Failed, Keywords: []opscore.Keyword{opscore.KW("error", "power", "boom")}}, nil
	}
	return HubReply{Actor: target, Code: opscore.Done}, nil
}

// TestCheckDictionaryCatchesBadLines makes sure the checker can fail.
func TestCheckDictionaryCatchesBadLines(t *testing.T) {
	for _, l := range []string{
		`1 2 f error="Command \"x\" not found."`,
		`1 2 i node=gfa1,host,T`,
		`1 2 i unknownKeyword=1`,
		`1 2 i raw=gfa1,x`,
		`1 2 w error=nobody,"x"`,
		`1 2 :`,
	} {
		ft := &testing.T{}
		checkDictionaryInto(ft, l)
		if !ft.Failed() {
			t.Errorf("checker accepted %q", l)
		}
	}
	ok := &testing.T{}
	for _, l := range []string{`1 2 f error=fliswarm,"x"`, `0 0 i status=gfa1,gfa1n,1,2`, `1 2 w error=gfa1,gfa1n,"x"`, `1 2 w help=gfa1,"Usage: x"`} {
		checkDictionaryInto(ok, l)
	}
	if ok.Failed() {
		t.Errorf("checker rejected a good line")
	}
}

// checkDictionaryInto runs checkDictionary in a goroutine, as a nil-runner
// testing.T may call runtime.Goexit.
func checkDictionaryInto(t *testing.T, line string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkDictionary(t, nodeNames, line)
	}()
	<-done
}
