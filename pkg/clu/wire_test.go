package clu

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseReplyKeepsKeyOrder(t *testing.T) {
	line := `{"header": {"command_id": 3, "commander_id": "f1c2", "message_code": "i", "internal": false, "sender": "gfa1"},
	          "data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}, "b": [1, 2.5, "z", true, null], "a": "s"}}`
	r, err := ParseReply([]byte(strings.ReplaceAll(line, "\n", "")))
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := Header{CommandID: 3, CommanderID: "f1c2", MessageCode: "i", Sender: "gfa1"}
	if r.Header != wantHeader {
		t.Errorf("header %+v", r.Header)
	}
	want := Object{
		{Key: "filename", Value: Object{{"camera", "gfa1n"}, {"filename", "/data/x.fits"}}},
		{Key: "b", Value: []any{json.Number("1"), json.Number("2.5"), "z", true, nil}},
		{Key: "a", Value: "s"},
	}
	if diff := cmp.Diff(want, r.Data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	fn, _ := r.Data.Get("filename")
	if got := fn.(Object).Values(); !cmp.Equal(got, []any{"gfa1n", "/data/x.fits"}) {
		t.Errorf("Values() = %v", got)
	}
}

func TestParseReplyRejects(t *testing.T) {
	tests := []struct {
		name, line string
		noHeader   bool
	}{
		{"no header", `{"data": {"a": 1}}`, true},
		{"empty header", `{"header": {}, "data": {}}`, true},
		{"header not an object", `{"header": 3}`, true},
		{"not json", `hello`, false},
		{"not an object", `[1, 2]`, false},
		{"trailing data", `{"header": {"command_id": 1}} {}`, false},
		{"data not an object", `{"header": {"command_id": 1}, "data": [1]}`, false},
		{"bad header types", `{"header": {"command_id": "x"}}`, false},
		{"too deep", `{"header": {"command_id": 1}, "data": {"a": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, false},
		{"unterminated", `{"header": {"command_id": 1}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseReply([]byte(tc.line))
			if err == nil {
				t.Fatal("accepted")
			}
			if errors.Is(err, ErrNoHeader) != tc.noHeader {
				t.Errorf("ErrNoHeader = %v, want %v (%v)", errors.Is(err, ErrNoHeader), tc.noHeader, err)
			}
		})
	}
}

func TestCommandLines(t *testing.T) {
	if got := string(FormatCommand(3, "expose 5 --count 2")); got != "3 expose 5 --count 2\n" {
		t.Errorf("FormatCommand = %q", got)
	}
	tests := []struct {
		line    string
		id      int
		command string
		err     bool
	}{
		{"3 expose 5", 3, "expose 5", false},
		{"  12   status  ", 12, "status", false},
		{"status", 0, "status", false},
		{"-1 status", 0, "-1 status", false},
		{"   ", 0, "", true},
	}
	for _, tc := range tests {
		id, cmd, err := ParseCommand(tc.line)
		if (err != nil) != tc.err || id != tc.id || cmd != tc.command {
			t.Errorf("ParseCommand(%q) = %d, %q, %v", tc.line, id, cmd, err)
		}
	}
	if !IsTerminal(":") || !IsTerminal("f") || !IsTerminal("!") || IsTerminal("i") || IsTerminal(">") {
		t.Error("IsTerminal")
	}
}

// FuzzParseReply: any line either parses or errors (ErrNoHeader or a
// *DecodeError carrying the line), never panics; on strict JSON it agrees
// with encoding/json; a parsed reply marshals to a line that parses to the
// same reply, and relays to a line the opscore parser accepts.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		`{"header": {"command_id": 3, "message_code": "i", "sender": "gfa1"}, "data": {"filename": {"camera": "gfa1n", "filename": "/d/x.fits"}}}`,
		`{"header": {"command_id": 0, "message_code": "w", "sender": "fvc"}, "data": {"help": ["a", "b"]}}`,
		`{"header": {}}`, `{}`, `[]`, `"x"`, `{"header": {"command_id": 1}, "data": null}`,
		`{"header": {"command_id": 1, "sender": "gfa1"}, "data": {"t": NaN, "l": [Infinity, -Infinity], "s": "NaN", "raw": {"RAW": -Infinity}}}`,
		`{"header": {"command_id": 1}, "data": {"t": -NaN}}`, `{"header": {"command_id": 1}, "data": {"t": Infinit}}`,
		`{"header": {"command_id": 1}, "data": {"s": "\ud800\udc00\u00e9\"", "n": -0.0e+5}}`, "{\"header\": {\"command_id\": 1}, \"data\": {\"s\": \"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	if b, err := os.ReadFile("testdata/python_lines.txt"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f.Add([]byte(l))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		in := string(line)
		r, err := ParseReply(line)
		ref, refErr := referenceParse(line)
		if refErr == nil {
			if err != nil {
				t.Fatalf("ParseReply(%q): %v; encoding/json accepts it", in, err)
			}
			if diff := cmp.Diff(ref, r); diff != "" {
				t.Fatalf("ParseReply(%q) differs from encoding/json (-json +got):\n%s", in, diff)
			}
		} else if errors.Is(refErr, ErrNoHeader) && !errors.Is(err, ErrNoHeader) {
			t.Fatalf("ParseReply(%q): %v, want ErrNoHeader", in, err)
		}
		if err != nil {
			var de *DecodeError
			if !errors.Is(err, ErrNoHeader) && (!errors.As(err, &de) || de.Line != in) {
				t.Fatalf("ParseReply(%q): error %v (%T) does not carry the line", in, err, err)
			}
			return
		}
		// The data written back by Object's encoder reads back the same.
		b, err := r.Data.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal of parsed data: %v", err)
		}
		again, err := ParseReply(append(append([]byte(`{"header": {"command_id": 1}, "data": `), b...), '}'))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		opts := cmp.Options{cmpopts.EquateNaNs(), cmpopts.EquateEmpty()}
		if !cmp.Equal(r.Data, again.Data, opts) {
			t.Fatalf("round trip changed the data:\n%s", cmp.Diff(r.Data, again.Data, opts))
		}
		checkRelay(t, r)
	})
}
