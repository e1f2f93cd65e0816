package opscore

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// object is an ordered object like clu.Object, without importing it.
type object []any

func (o object) Values() []any { return o }

type celsius float64

type stringer struct{ s string }

func (s *stringer) String() string { return s.s }

func TestFormatReply(t *testing.T) {
	tests := []struct {
		name string
		uid  int
		id   int
		code Code
		kws  []Keyword
		want string
	}{
		{"no keywords keeps the space", 1, 13, Done, nil, "1 13 : "},
		{"running", 2, 5, Running, nil, "2 5 > "},
		{"broadcast", 0, 0, Info, []Keyword{KW("text", "hello")}, "0 0 i text=hello"},
		{"greeting", 1, 0, Info, []Keyword{KW("yourUserID", 1), KW("num_users", 2)}, "1 0 i yourUserID=1; num_users=2"},
		{"version", 1, 0, Info, []Keyword{KW("version", Quoted("1.2.3"))}, `1 0 i version="1.2.3"`},
		{"user info", 0, 0, Info, []Keyword{KW("UserInfo", 2, "127.0.0.1")}, "0 0 i UserInfo=2,127.0.0.1"},
		{"node", 3, 7, Info, []Keyword{KW("node", "gfa1", "sdss-gfa1", "tcp://sdss-gfa1:2375", true, true)},
			"3 7 i node=gfa1,sdss-gfa1,tcp://sdss-gfa1:2375,T,T"},
		{"text with spaces", 3, 7, Warning, []Keyword{KW("text", "Node sdss-gfa1 is not pinging back.")},
			`3 7 w text="Node sdss-gfa1 is not pinging back."`},
		{"bare keyword", 1, 1, Info, []Keyword{KW("flag"), KW("text", "x")}, "1 1 i flag; text=x"},
		{"negative ids", -1, -5, Info, nil, "0 0 i "},
		{"invalid code", 1, 1, Code('\n'), []Keyword{KW("a", 1)}, "1 1 w a=1"},
		{"container NA", 1, 2, Debug, []Keyword{KW("container", "gfa1", nil)}, "1 2 d container=gfa1,NA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatReply(tt.uid, tt.id, tt.code, tt.kws...); got != tt.want {
				t.Errorf("FormatReply = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeywordString(t *testing.T) {
	var nilStringer *stringer
	tests := []struct {
		name string
		kw   Keyword
		want string
	}{
		// Strings: bare when a plain word, quoted otherwise.
		{"plain word", KW("text", "hello"), "text=hello"},
		{"empty string", KW("text", ""), `text=""`},
		{"space", KW("text", "a b"), `text="a b"`},
		{"comma", KW("text", "a,b"), `text="a,b"`},
		{"semicolon", KW("text", "a;b"), `text="a;b"`},
		{"equals", KW("text", "a=b"), `text="a=b"`},
		{"double quote", KW("text", `say "hi"`), `text="say \"hi\""`},
		{"single quote", KW("text", "it's"), `text="it's"`},
		{"backslash alone stays bare", KW("path", `C:\x`), `path=C:\x`},
		{"backslash quoted is escaped", KW("text", `a \ b`), `text="a \\ b"`},
		{"trailing backslash", KW("text", `a \`), `text="a \\"`},
		{"newline", KW("text", "line1\nline2"), `text="line1 line2"`},
		{"crlf and tab", KW("text", "a\r\n\tb"), `text="a   b"`},
		{"nul and escape", KW("text", "a\x00\x1bb"), `text="a  b"`},
		{"C1 next line", KW("text", "a\u0085b"), `text="a b"`},
		{"line separator", KW("text", "a\u2028b"), `text="a` + "\u2028" + `b"`},
		{"no-break space", KW("text", "a\u00a0b"), `text="a` + "\u00a0" + `b"`},
		{"invalid utf8", KW("text", "a\xffb"), "text=a\uFFFDb"},
		{"unicode word", KW("text", "ünï"), "text=ünï"},
		{"path", KW("filename", "gfa1", "gfa1n", "/data/gcam/61000/gimg-gfa1n-0001.fits"),
			"filename=gfa1,gfa1n,/data/gcam/61000/gimg-gfa1n-0001.fits"},
		{"quoted type", KW("version", Quoted("")), `version=""`},
		{"quoted type escapes", KW("version", Quoted(`a"b\`)), `version="a\"b\\"`},
		{"named string", KW("node", namedString("gfa 1")), `node="gfa 1"`},

		// Other scalars.
		{"bools", KW("b", true, false), "b=T,F"},
		{"ints", KW("n", 0, -3, int8(-8), int16(16), int32(32), int64(-64), uint(1), uint8(8), uint64(math.MaxUint64)),
			"n=0,-3,-8,16,32,-64,1,8,18446744073709551615"},
		{"floats", KW("f", 1.5, -0.25, 3.0, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, float32(0.1)),
			"f=1.5,-0.25,3,100000000000000000000,1e+21,0.000001,1e-7,123456789.125,0.1"},
		{"float zero", KW("f", 0.0, math.Copysign(0, -1)), "f=0,-0"},
		{"nan and inf as Python writes them", KW("f", math.NaN(), math.Inf(1), math.Inf(-1), float32(math.Inf(-1))), `f=nan,inf,-inf,-inf`},
		{"string NaN stays a string", KW("f", "NaN", "nan", "Infinity"), `f=NaN,nan,Infinity`},
		{"reserved name raw", KW("raw", 1), `xraw=1`},
		{"reserved name RaW", KW("RaW"), `xRaW`},
		{"raw-like names are fine", KW("rawData", 1), `rawData=1`},
		{"named float", KW("t", celsius(-12.5), celsius(math.NaN())), `t=-12.5,nan`},
		{"json number", KW("n", json.Number("1.50"), json.Number("-2e-3")), "n=1.50,-2e-3"},
		{"bad json number is a string", KW("n", json.Number("1 2"), json.Number("NaN")), `n="1 2",NaN`},
		{"nil", KW("v", nil), "v=NA"},
		{"nil pointer", KW("v", (*int)(nil)), "v=NA"},
		{"pointer", KW("v", ptr(5)), "v=5"},
		{"error", KW("error", errors.New("boom: it broke")), `error="boom: it broke"`},
		{"stringer", KW("d", 90*time.Second), "d=1m30s"},
		{"nil stringer", KW("s", nilStringer), "s=NA"},
		{"bytes", KW("b", []byte("raw")), "b=raw"},

		// No values: the bare key, never `key=`.
		{"no values", KW("flag"), "flag"},
		{"empty list", KW("enabledNodes", []string{}), "enabledNodes"},
		{"empty nested lists", KW("x", []any{[]any{}, []int{}}), "x"},

		// Lists and objects are flattened.
		{"list", KW("enabledNodes", []string{"gfa1", "gfa2"}), "enabledNodes=gfa1,gfa2"},
		{"any list", KW("l", []any{"a", 1, true, nil, "b c"}), `l=a,1,T,NA,"b c"`},
		{"nested list", KW("l", []any{1, []any{2, []any{3, 4}}, 5}), "l=1,2,3,4,5"},
		{"array", KW("a", [2]int{1, 2}), "a=1,2"},
		{"object", KW("filename", "gfa1", object{"gfa1n", "/data/x.fits"}), "filename=gfa1,gfa1n,/data/x.fits"},
		{"object with a list", KW("status", "gfa1", object{"gfa1n", []any{1, 1, 2048, 2048}, -10.5}),
			"status=gfa1,gfa1n,1,1,2048,2048,-10.5"},
		{"map in key order", KW("m", map[string]any{"b": 2, "a": 1, "c": "x y"}), `m=1,2,"x y"`},
		{"object in object is JSON", KW("o", object{"a", object{"b", 1}}), `o=a,"[\"b\",1]"`},
		{"map in object is JSON", KW("o", object{"a", map[string]int{"k": 1}}), `o=a,"{\"k\":1}"`},
		{"object in list in object is flattened", KW("o", object{"a", []any{object{"b", "c"}}}), "o=a,b,c"},

		// Names.
		{"name with space", KW("bad name", 1), "bad_name=1"},
		{"name with equals", KW("a=b", 1), "a_b=1"},
		{"name with dot", KW("a.b_c9", 1), "a.b_c9=1"},
		{"empty name", KW("", 1), "x=1"},
		{"name starting with digit", KW("9lives", 1), "x9lives=1"},
		{"unicode name", KW("tëmp", 1), "t_mp=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.kw.String()
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			checkWireRules(t, got)
		})
	}
}

func TestDeepNestingIsJSON(t *testing.T) {
	var v any = "core"
	for range maxFlattenDepth + 3 {
		v = []any{v}
	}
	got := KW("deep", v).String()
	want := `deep="[[\"core\"]]"`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestEncodeKeywords(t *testing.T) {
	got := EncodeKeywords(KW("a", 1), KW("b"), KW("c", "x y", 2.5))
	want := `a=1; b; c="x y",2.5`
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := EncodeKeywords(); got != "" {
		t.Errorf("no keywords: got %q", got)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "yourUserID": true, "num_users": true, "a.b": true, "A9_.": true,
		"": false, "_a": false, "9a": false, "a b": false, "a-b": false, "é": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestRoundTrip checks that what the encoder writes parses back to the same
// keyword names and the textual form of every value.
func TestRoundTrip(t *testing.T) {
	kws := []Keyword{
		KW("text", "Node sdss-gfa1 is not pinging back."),
		KW("flag"),
		KW("node", "gfa1", "sdss-gfa1", "tcp://sdss-gfa1:2375", true, false),
		KW("weird", `a"b`, `c\d`, `e\`, "", "f,g;h=i", "it's", "tab\there", "\\\"", nil, 1.25, -7),
		KW("filename", "gfa1", object{"gfa1n", "/data/x.fits"}),
	}
	line := FormatReply(4, 99, Failed, kws...)
	r, err := ParseReply(line)
	if err != nil {
		t.Fatalf("ParseReply(%q): %v", line, err)
	}
	want := Reply{
		UserID: 4, CmdID: 99, Code: Failed, Line: line,
		Keywords: []Keyword{
			KW("text", "Node sdss-gfa1 is not pinging back."),
			{Name: "flag"},
			KW("node", "gfa1", "sdss-gfa1", "tcp://sdss-gfa1:2375", "T", "F"),
			KW("weird", `a"b`, `c\d`, `e\`, "", "f,g;h=i", "it's", "tab here", "\\\"", "NA", "1.25", "-7"),
			KW("filename", "gfa1", "gfa1n", "/data/x.fits"),
		},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s", diff)
	}
}

// checkWireRules fails if s (a keyword or reply) holds anything the
// protocol says never to write.
func checkWireRules(t *testing.T, s string) {
	t.Helper()
	if strings.ContainsAny(s, "\n\r") {
		t.Errorf("%q contains a line break", s)
	}
	if strings.HasSuffix(s, ";") || strings.HasSuffix(strings.TrimSpace(s), ";") {
		t.Errorf("%q has a trailing ;", s)
	}
	if _, err := ParseKeywords(s); err != nil {
		t.Errorf("%q does not parse back: %v", s, err)
	}
}

type namedString string

func ptr[T any](v T) *T { return &v }

func TestReservedAndSafeNames(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reserved bool
		safe     string
	}{
		{"raw", true, "xraw"}, {"RAW", true, "xRAW"}, {"Raw", true, "xRaw"}, {"rAw", true, "xrAw"},
		{"raw_", false, "raw_"}, {"rawx", false, "rawx"}, {"xraw", false, "xraw"}, {"ra", false, "ra"},
		{"text", false, "text"}, {"", false, "x"}, {"9x", false, "x9x"}, {"a b", false, "a_b"},
		{"r\u0430w", false, "r_w"}, // Cyrillic a: not reserved, sanitized
	} {
		if got := ReservedName(tc.name); got != tc.reserved {
			t.Errorf("ReservedName(%q) = %v", tc.name, got)
		}
		got := SafeName(tc.name)
		if got != tc.safe {
			t.Errorf("SafeName(%q) = %q, want %q", tc.name, got, tc.safe)
		}
		if !ValidName(got) {
			t.Errorf("SafeName(%q) = %q is not a valid name", tc.name, got)
		}
		if w := KW(tc.name).String(); w != got {
			t.Errorf("KW(%q) is written %q, SafeName says %q", tc.name, w, got)
		}
	}
	if ValidName("raw") || ValidName("RAW") {
		t.Error("ValidName accepts the reserved name raw")
	}
}

func TestParseReplyRejectsRaw(t *testing.T) {
	for _, line := range []string{"1 2 i raw=x", "1 2 i a=1; RAW=x y", "1 2 i Raw"} {
		if r, err := ParseReply(line); err == nil {
			t.Errorf("ParseReply(%q) = %+v, want an error", line, r)
		}
	}
}
