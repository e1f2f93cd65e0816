package camsim

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sdss/fliswarm/pkg/clu"
)

func TestMarshalReplyRoundTrip(t *testing.T) {
	r := clu.Reply{
		Header: clu.Header{CommandID: 7, CommanderID: "abc", MessageCode: ":", Sender: "fvc"},
		Data: clu.Object{{Key: "z", Value: "last?"},
			{Key: "a", Value: []any{json.Number("1"), clu.Object{{Key: "k", Value: "v"}}}}},
	}
	b, err := MarshalReply(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\n") {
		t.Fatalf("not one line: %s", b)
	}
	got, err := clu.ParseReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Empty data is written as an object, never null.
	b, _ = MarshalReply(clu.Reply{Header: clu.Header{CommandID: 1, MessageCode: ">", Internal: true}})
	if !strings.HasSuffix(string(b), `"data":{}}`) {
		t.Errorf("empty data: %s", b)
	}
}

func TestMarshalReplyNonFinite(t *testing.T) {
	r := clu.Reply{
		Header: clu.Header{CommandID: 1, MessageCode: "i", Sender: "gfa1"},
		Data: clu.Object{{Key: "t", Value: math.NaN()},
			{Key: "l", Value: []any{math.Inf(1), math.Inf(-1), float32(2.5), 1e-7}},
			{Key: "s", Value: "<&>\u2028"}},
	}
	b, err := MarshalReply(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"header":{"command_id":1,"commander_id":"","message_code":"i","internal":false,"sender":"gfa1"},"data":{"t":NaN,"l":[Infinity,-Infinity,2.5,1e-7],"s":"<&>\u2028"}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if _, err := MarshalReply(clu.Reply{Data: clu.Object{{Key: "n", Value: json.Number("1 2")}}}); err == nil {
		t.Error("an invalid json.Number was marshalled")
	}
}
