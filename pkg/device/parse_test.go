package device

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sdss/fliswarm/pkg/clu"
)

var parseSeeds = []string{
	`{"header": {"command_id": 3, "commander_id": "f1c2", "message_code": "i", "internal": false, "sender": "gfa1"}, "data": {"filename": {"camera": "gfa1n", "filename": "/data/x.fits"}}}`,
	`{"header":{"command_id":1,"message_code":"w","sender":"gfa2"},"data":{"text":"hello there","binning":[1,2],"temp":-10.5e-3,"ok":true,"none":null,"deep":[[{"a":[]}]]}}`,
	`{"header": {"command_id": 1, "message_code": ">", "internal": true, "sender": "gfa1"}, "data": {}}`,
	`{"header": {"command_id": 1, "message_code": ":"}}`,
	`{"data": {"text": "no header"}}`,
	`{"header": {}}`,
	`{"header": null}`,
	`{"header": {"command_id": 1.0}}`,
	`{"header": {"Command_ID": 2}}`,
	`{"header": {"command_id": 1, "command_id": 2}}`,
	`{"header": {"command_id": 1}, "data": [1]}`,
	`{"header": {"command_id": 1}, "data": null}`,
	`{"header": {"command_id": 1}, "data": {"t": NaN}}`,
	`{"header": {"command_id": 1}, "data": {"t": "\u00b0C \ud83d\ude00 \n\t\"\\\/"}}`,
	`{"header": {"command_id": 1}, "data": {"t": "\ud83d"}}`,
	`{"header": {"command_id": 1}, "data": {"t": "caf` + "\xe9" + `"}}`,
	`{"header": {"command_id": 99999999999999999999}}`,
	`{"header": {"command_id": 1}} trailing`,
	`{"header": {"command_id": 1}, "extra": {"x": [1, "y"]}, "data": {"k": 01}}`,
	`{"header": {"command_id": -0}, "data": {"n": -0.0e+0, "m": 1E5}}`,
	"\t {\"header\":{\"sender\":\"x\"}} \r",
	`[1, 2]`,
	``,
}

func FuzzParseReply(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fast, ok := fastParse(line)
		if !ok {
			return
		}
		ref, err := clu.ParseReply(line)
		if err != nil {
			t.Fatalf("fast path took %q, clu rejects it: %v", line, err)
		}
		if diff := cmp.Diff(ref, fast); diff != "" {
			t.Fatalf("fast path differs on %q (-clu +fast):\n%s", line, diff)
		}
	})
}

// TestFastParseTakesTheCommonShape keeps the fast path from silently
// stepping aside for what cameras send all the time.
func TestFastParseTakesTheCommonShape(t *testing.T) {
	for _, s := range parseSeeds[:4] {
		if _, ok := fastParse([]byte(s)); !ok {
			t.Errorf("fast path declined %s", s)
		}
	}
	b, _ := clu.MarshalReply(clu.Reply{Header: clu.Header{CommandID: 7, CommanderID: "abc", MessageCode: "i", Sender: "gfa1"},
		Data: clu.Object{{Key: "text", Value: "flood " + strings.Repeat("x", 10)}}})
	if _, ok := fastParse(b); !ok {
		t.Errorf("fast path declined %s", b)
	}
}

func BenchmarkParseReply(b *testing.B) {
	line := []byte(parseSeeds[0])
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = parseReply(line)
		}
	})
	b.Run("clu", func(b *testing.B) {
		for b.Loop() {
			_, _ = clu.ParseReply(line)
		}
	})
}
