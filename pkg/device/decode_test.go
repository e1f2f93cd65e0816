package device

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/linesession"
	"github.com/sdss/fliswarm/test/camsim"
)

func TestGarbageAndLongLinesAreRelayed(t *testing.T) {
	cam := newFakeCamera(t, "gfa1", false)
	var unsolicited recorder
	c := startClient(t, cam.addr, Options{MaxLineBytes: 1 << 20, OnUnsolicited: unsolicited.add})

	var rec recorder
	ch := sendAsync(c, context.Background(), "status", &rec)
	p := cam.next()
	s := p.s
	s.reply(p.id, clu.CodeRunning, nil)
	// Ignored, as the protocol says: blank lines, no header, empty header.
	s.raw("\n")
	s.raw("   \r\n")
	s.raw(`{"data": {"text": "no header"}}` + "\n")
	s.raw(`{"header": {}, "data": {"text": "empty header"}}` + "\n")
	s.raw(`{"header": null}` + "\n")
	// Undecodable, no command id: unsolicited warnings.
	s.raw("not json at all\n")
	s.raw("[1, 2, 3]\n")
	s.raw(`{"header": {"command_id": "one"}}` + "\n")
	s.raw(strings.Repeat("[", 100000) + "\n")
	// Undecodable with the command's id: a warning to the command.
	s.raw(fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i"}, "data": [1]}`, p.id) + "\n")
	// Longer than the limit, even a valid reply: skipped, reported to
	// its command.
	big := fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i", "sender": "gfa1"}, "data": {"text": "%s"}}`,
		p.id, strings.Repeat("x", 2<<20))
	s.raw(big + "\n")
	// Just under the limit: accepted.
	near := fmt.Sprintf(`{"header": {"command_id": %d, "message_code": "i", "sender": "gfa1"}, "data": {"text": "%s"}}`,
		p.id, strings.Repeat("y", (1<<20)-200))
	s.raw(near + "\n")
	s.reply(p.id, clu.CodeDone, nil)

	out := wait(t, ch)
	if out.err != nil || !out.res.OK() {
		t.Fatalf("Send = %+v, %v", out.res, out.err)
	}
	got := rec.get()
	if codes(got) != ">wwi:" {
		t.Fatalf("delivered codes %q, want >wwi:", codes(got))
	}
	for _, r := range got[1:3] {
		v, _ := r.Data.Get("text")
		if s, _ := v.(string); !strings.HasPrefix(s, UndecodableText) || r.Header.Sender != "gfa1" {
			t.Errorf("undecodable line relayed as %+v", r)
		}
	}
	if v, _ := got[2].Data.Get("text"); !strings.Contains(v.(string), "longer than the limit") {
		t.Errorf("long line reported as %q", v)
	}
	if v, _ := got[3].Data.Get("text"); len(v.(string)) != (1<<20)-200 {
		t.Errorf("near-limit line text has %d bytes", len(v.(string)))
	}
	if !c.Connected() {
		t.Error("garbage dropped the connection")
	}
	eventually(t, "4 undecodable lines unsolicited", func() bool { return len(unsolicited.get()) >= 4 })
	if n := len(unsolicited.get()); n != 4 {
		t.Errorf("%d unsolicited replies, want 4: %+v", n, unsolicited.get())
	}
	for _, r := range unsolicited.get() {
		v, _ := r.Data.Get("text")
		if s, _ := v.(string); r.Header.MessageCode != clu.CodeWarning || !strings.HasPrefix(s, UndecodableText) {
			t.Errorf("unsolicited %+v", r)
		}
	}

	// An undecodable line that looks like a command's end ends it, as a
	// failure, instead of leaving it to its timeout.
	ch = sendAsync(c, context.Background(), "temperature", &rec)
	p = cam.next()
	p.s.raw(fmt.Sprintf(`{"header": {"command_id": %d, "message_code": ":", "sender": "gfa1"}, "data": {"t": NaN-ish}}`, p.id) + "\n")
	out = wait(t, ch)
	if out.err != nil || out.res.Code != clu.CodeFailed {
		t.Fatalf("Send = %+v, %v; want a failure", out.res, out.err)
	}
}

// FuzzReadLoop feeds arbitrary bytes to a camera connection with commands
// 1-3 in flight: it must not panic, every reply a command receives must
// carry its id, and a command that ended normally ended with a terminal
// code.
func FuzzReadLoop(f *testing.F) {
	reply := func(id int, code string) string {
		b, _ := camsim.MarshalReply(clu.Reply{Header: clu.Header{CommandID: id, MessageCode: code, Sender: "gfa1"},
			Data: clu.Object{{Key: "text", Value: "x"}}})
		return string(b) + "\n"
	}
	f.Add([]byte(reply(1, ">") + reply(2, "i") + reply(1, ":") + reply(0, "i") + reply(3, "f")))
	f.Add([]byte("garbage\n{\"header\":{}}\n" + reply(2, ":")))
	f.Add([]byte(strings.Repeat("z", 600) + "\n" + reply(1, ":")))
	f.Add([]byte(`{"header": {"command_id": 1, "message_code": ":"}}`)) // no newline
	f.Add([]byte(`{"header": {"command_id": 2, "message_code": ":", "sender": "gfa1"}, "data": {"x": NaN}}` + "\n"))
	f.Add([]byte("\n\n\r\n" + reply(-1, ":") + reply(1<<40, "!")))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := New("gfa1", "127.0.0.1:1", Options{MaxLineBytes: 256})
		a, b := net.Pipe()
		defer a.Close()
		go func() { _, _ = io.Copy(io.Discard, b) }()
		s := linesession.New(a, linesession.Config[clu.Reply]{
			Decode: c.decode, DecodeLong: c.decodeLong, Check: c.checkSender,
			MaxLineBytes: 256, OnUnsolicited: func(clu.Reply) {},
		})
		var recs [4]recorder
		var calls []*linesession.Call[clu.Reply]
		for id := 1; id <= 3; id++ {
			call, err := s.Start(context.Background(), formatCommand("cmd"), recs[id].add)
			if err != nil || call.ID != id {
				t.Fatalf("Start: %v, id %v", err, call)
			}
			calls = append(calls, call)
		}
		_ = s.Serve(bytes.NewReader(data))
		for i, call := range calls {
			final, err := call.Wait(context.Background(), 0)
			for _, r := range recs[i+1].get() {
				if r.Header.CommandID != call.ID {
					t.Fatalf("command %d received a reply for id %d", call.ID, r.Header.CommandID)
				}
			}
			if err == nil && (final.Header.CommandID != call.ID || !clu.IsTerminal(final.Header.MessageCode)) {
				t.Fatalf("command %d ended with %+v", call.ID, final)
			}
		}
	})
}
