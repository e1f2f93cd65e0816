package opscore

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// shellQuote quotes s for SplitWords with single quotes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// FuzzParseLine: ParseLine never panics, fails only with ErrEmptyLine or a
// *ParseError, and what it parses quotes back to the same words.
func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"status", "7 status", "APO.Jose 12 talk -n gfa1,gfa2 expose 5",
		"jaeger.jaeger 3 4 reconnect --force", `x "a b" 'c d' e\ f`, `x "open`,
		"", "   ", "12", "a.b", "1 2 3", "\x00\xff", `x "\"" '\'`, "x \r\n", "99999999999999999999 x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		l, err := ParseLine(line)
		if err != nil {
			var pe *ParseError
			if !errors.Is(err, ErrEmptyLine) && !errors.As(err, &pe) {
				t.Fatalf("ParseLine(%q): unexpected error type %T: %v", line, err, err)
			}
			return
		}
		if l.Verb == "" {
			t.Fatalf("ParseLine(%q) succeeded with an empty verb", line)
		}
		if l.ID < 0 {
			t.Fatalf("ParseLine(%q): negative id %d", line, l.ID)
		}
		words := []string{shellQuote(l.Verb)}
		for _, a := range l.Args {
			words = append(words, shellQuote(a))
		}
		again := "5 " + strings.Join(words, " ")
		l2, err := ParseLine(again)
		if err != nil {
			t.Fatalf("re-quoted %q (from %q) does not parse: %v", again, line, err)
		}
		if l2.ID != 5 || l2.Verb != l.Verb || !cmp.Equal(l2.Args, l.Args, cmpopts.EquateEmpty()) {
			t.Fatalf("re-quoted %q parses to %+v, want verb %q args %q", again, l2, l.Verb, l.Args)
		}
	})
}

// FuzzEncode: whatever the values, the encoder writes one line that parses
// back to the (sanitized) keyword and the textual values.
func FuzzEncode(f *testing.F) {
	f.Add("text", "Node sdss-gfa1 is not pinging back.", 1.5, int64(3), true)
	f.Add("", "", math.NaN(), int64(-1), false)
	f.Add("a b=c;", "a\"b\\c\nd\re;f,g=h'i", math.Inf(-1), int64(math.MinInt64), true)
	f.Add("9x", "\xff\x00\u2028\u00a0", 1e-9, int64(0), false)
	f.Add("ok", `\`, 1e300, int64(42), true)
	f.Fuzz(func(t *testing.T, name, s string, fl float64, i int64, b bool) {
		kws := []Keyword{
			KW(name, s, fl, i, b, nil),
			KW("list", []any{s, []any{s, i}}, object{s, fl}),
			KW(name),
			KW("q", Quoted(s), strings.Repeat(s, 2)),
		}
		line := FormatReply(3, 17, Info, kws...)
		if strings.ContainsAny(line, "\n\r") {
			t.Fatalf("line break in %q", line)
		}
		if strings.HasSuffix(line, ";") {
			t.Fatalf("trailing ; in %q", line)
		}
		r, err := ParseReply(line)
		if err != nil {
			t.Fatalf("ParseReply(%q): %v", line, err)
		}
		cs := CleanString(s)
		ft := floatText(fl)
		is := strconv.FormatInt(i, 10)
		bs := "F"
		if b {
			bs = "T"
		}
		n := string(appendName(nil, name))
		want := []Keyword{
			KW(n, cs, ft, is, bs, "NA"),
			KW("list", cs, cs, is, cs, ft),
			{Name: n},
			KW("q", cs, CleanString(strings.Repeat(s, 2))),
		}
		if diff := cmp.Diff(want, r.Keywords); diff != "" {
			t.Fatalf("%q parses back wrong (-want +got):\n%s", line, diff)
		}
		if r.UserID != 3 || r.CmdID != 17 || r.Code != Info {
			t.Fatalf("header of %q parsed as %+v", line, r)
		}
	})
}

// floatText is the text a float is expected to parse back as.
func floatText(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return string(appendFloat(nil, f, 64))
}

// FuzzParseReply: ParseReply never panics, and a parsed reply encodes back
// to a line that parses to the same reply (values cleaned of control
// characters and invalid UTF-8, which the encoder never writes).
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"1 13 : ", "0 0 i UserInfo=2,127.0.0.1", `1 0 i version="1.2.3"`,
		`2 7 w text="a \"b\" \\"; flag; x=1,2`, `3 4 i q='it\'s',""`, "1 13 :", "1 13 : key=",
		"1 13 : a=1;", `1 13 : t="a"b`, "01 1 : ", "1 1 z ", "1 1 i a=\x01\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseReply(line)
		if err != nil {
			return
		}
		if r.UserID < 0 || r.CmdID < 0 || !r.Code.Valid() {
			t.Fatalf("ParseReply(%q) = %+v: bad header", line, r)
		}
		for _, k := range r.Keywords {
			if !ValidName(k.Name) {
				t.Fatalf("ParseReply(%q): invalid name %q", line, k.Name)
			}
		}
		again := FormatReply(r.UserID, r.CmdID, r.Code, r.Keywords...)
		r2, err := ParseReply(again)
		if err != nil {
			t.Fatalf("re-encoded %q (from %q) does not parse: %v", again, line, err)
		}
		want := make([]Keyword, len(r.Keywords))
		for i, k := range r.Keywords {
			want[i] = Keyword{Name: k.Name}
			for _, v := range k.Values {
				want[i].Values = append(want[i].Values, CleanString(v.(string)))
			}
		}
		if diff := cmp.Diff(want, r2.Keywords, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q re-encoded as %q parses differently (-want +got):\n%s", line, again, diff)
		}
		if r2.UserID != r.UserID || r2.CmdID != r.CmdID || r2.Code != r.Code {
			t.Fatalf("header changed: %q -> %q", line, again)
		}
	})
}
