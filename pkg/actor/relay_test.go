package actor

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/opscore"
)

func mustParse(t testing.TB, line string) clu.Reply {
	t.Helper()
	r, err := clu.ParseReply([]byte(line))
	if err != nil {
		t.Fatalf("ParseReply(%s): %v", line, err)
	}
	return r
}

func TestRelay(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []line
	}{
		{
			name: "object value from protocols.md",
			line: `{"header": {"command_id": 3, "commander_id": "f1c2", "message_code": "i", "internal": false, "sender": "gfa1"},
			        "data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}}`,
			want: []line{{Code: opscore.Info, Keywords: []opscore.Keyword{
				{Name: "filename", Values: []any{"gfa1", clu.Object{{Key: "camera", Value: "gfa1n"}, {Key: "filename", Value: "/data/x.fits"}}}},
			}}},
		},
		{
			name: "scalar, list, number, bool, null keep key order",
			line: `{"header": {"command_id": 1, "message_code": "w", "sender": "gfa2"},
			        "data": {"text": "hello there", "binning": [1, 2], "temp": -10.5, "ok": true, "none": null}}`,
			want: []line{{Code: opscore.Warning, Keywords: []opscore.Keyword{
				{Name: "text", Values: []any{"gfa2", "hello there"}},
				{Name: "binning", Values: []any{"gfa2", json.Number("1"), json.Number("2")}},
				{Name: "temp", Values: []any{"gfa2", json.Number("-10.5")}},
				{Name: "ok", Values: []any{"gfa2", true}},
				{Name: "none", Values: []any{"gfa2", nil}},
			}}},
		},
		{
			name: "empty list gives the sender alone",
			line: `{"header": {"command_id": 1, "message_code": "i", "sender": "fvc"}, "data": {"enabled": []}}`,
			want: []line{{Code: opscore.Info, Keywords: []opscore.Keyword{{Name: "enabled", Values: []any{"fvc"}}}}},
		},
		{
			name: "running with no data gives no line",
			line: `{"header": {"command_id": 1, "message_code": ">", "internal": true, "sender": "gfa1"}, "data": {}}`,
			want: nil,
		},
		{
			name: "done with no data gives no line",
			line: `{"header": {"command_id": 1, "message_code": ":", "sender": "gfa1"}}`,
			want: nil,
		},
		{
			name: "failure with error becomes a warning",
			line: `{"header": {"command_id": 2, "message_code": "f", "sender": "gfa3"}, "data": {"error": "camera not connected"}}`,
			want: []line{{Code: opscore.Warning, Keywords: []opscore.Keyword{{Name: "error", Values: []any{"gfa3", "camera not connected"}}}}},
		},
		{
			name: "done with data becomes info",
			line: `{"header": {"command_id": 2, "message_code": ":", "sender": "gfa3"}, "data": {"text": "Pong."}}`,
			want: []line{{Code: opscore.Info, Keywords: []opscore.Keyword{{Name: "text", Values: []any{"gfa3", "Pong."}}}}},
		},
		{
			name: "help is one line per value, after the other keywords",
			line: `{"header": {"command_id": 4, "message_code": "w", "sender": "gfa1"},
			        "data": {"help": ["Usage: flicamera [OPTIONS]", "  expose  Exposes."], "text": "bad command"}}`,
			want: []line{
				{Code: opscore.Warning, Keywords: []opscore.Keyword{{Name: "text", Values: []any{"gfa1", "bad command"}}}},
				{Code: opscore.Warning, Keywords: []opscore.Keyword{{Name: "help", Values: []any{"gfa1", "Usage: flicamera [OPTIONS]"}}}},
				{Code: opscore.Warning, Keywords: []opscore.Keyword{{Name: "help", Values: []any{"gfa1", "  expose  Exposes."}}}},
			},
		},
		{
			name: "scalar help is one line",
			line: `{"header": {"command_id": 4, "message_code": "i", "sender": "gfa1"}, "data": {"help": "one line"}}`,
			want: []line{{Code: opscore.Info, Keywords: []opscore.Keyword{{Name: "help", Values: []any{"gfa1", "one line"}}}}},
		},
		{
			name: "empty help list gives no line",
			line: `{"header": {"command_id": 4, "message_code": "i", "sender": "gfa1"}, "data": {"help": []}}`,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := relayLines(mustParse(t, tt.line))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Relay mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRelayFlattensObjectForEncoder(t *testing.T) {
	// The opscore encoder flattens a value with Values() one level, so the
	// protocols.md example goes out as filename=gfa1,gfa1n,/data/x.fits.
	lines := relayLines(mustParse(t, `{"header": {"command_id": 3, "message_code": "i", "sender": "gfa1"},
		"data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}}`))
	if len(lines) != 1 || len(lines[0].Keywords) != 1 {
		t.Fatalf("got %v, want one line with one keyword", lines)
	}
	var flat []any
	for _, v := range lines[0].Keywords[0].Values {
		if o, ok := v.(interface{ Values() []any }); ok {
			flat = append(flat, o.Values()...)
		} else {
			flat = append(flat, v)
		}
	}
	if diff := cmp.Diff([]any{"gfa1", "gfa1n", "/data/x.fits"}, flat); diff != "" {
		t.Errorf("flattened values (-want +got):\n%s", diff)
	}
}

func TestRelayCode(t *testing.T) {
	tests := []struct {
		in   string
		want opscore.Code
	}{
		{">", opscore.Debug},
		{":", opscore.Info},
		{"f", opscore.Warning},
		{"e", opscore.Warning},
		{"!", opscore.Warning},
		{"i", opscore.Info},
		{"d", opscore.Debug},
		{"w", opscore.Warning},
		{"", opscore.Warning},
		{"x", opscore.Warning},
		{"ii", opscore.Warning},
	}
	for _, tt := range tests {
		if got := relayCode(tt.in); got != tt.want {
			t.Errorf("relayCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzRelay checks that any reply a camera can send relays without panic,
// with the sender first in every keyword and a non-terminal code.
func FuzzRelay(f *testing.F) {
	f.Add([]byte(`{"header": {"command_id": 3, "message_code": "i", "sender": "gfa1"}, "data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}}`))
	f.Add([]byte(`{"header": {"command_id": 4, "message_code": "w", "sender": "gfa1"}, "data": {"help": ["a", "b"], "x": [1, [2, 3]]}}`))
	f.Add([]byte(`{"header": {"command_id": 0, "message_code": "!", "sender": ""}, "data": {"help": {"a": 1}}}`))
	f.Add([]byte(`{"header": {"message_code": ">"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := clu.ParseReply(line)
		if err != nil {
			return
		}
		for _, l := range relayLines(r) {
			if l.Code.Terminal() || l.Code == opscore.Running {
				t.Fatalf("relayed code %q ends or starts a command", l.Code)
			}
			if len(l.Keywords) == 0 {
				t.Fatalf("relayed an empty line")
			}
			for _, kw := range l.Keywords {
				if len(kw.Values) == 0 || kw.Values[0] != any(r.Header.Sender) {
					t.Fatalf("keyword %q values %v do not start with sender %q", kw.Name, kw.Values, r.Header.Sender)
				}
			}
		}
	})
}
