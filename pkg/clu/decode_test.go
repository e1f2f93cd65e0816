package clu

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sdss/fliswarm/pkg/opscore"
)

const hdr = `{"header": {"command_id": 3, "commander_id": "c", "message_code": "i", "internal": false, "sender": "gfa1"}, `

func mustParse(t *testing.T, line string) Reply {
	t.Helper()
	r, err := ParseReply([]byte(line))
	if err != nil {
		t.Fatalf("ParseReply(%s): %v", line, err)
	}
	return r
}

func TestParseReplyNonFinite(t *testing.T) {
	r := mustParse(t, hdr+`"data": {"t": NaN, "l": [Infinity, -Infinity, NaN, 1.5], "o": {"x": -Infinity}, "s": "NaN", "s2": "-Infinity"}}`)
	nan, pinf, ninf := math.NaN(), math.Inf(1), math.Inf(-1)
	want := Object{
		{"t", nan},
		{"l", []any{pinf, ninf, nan, json.Number("1.5")}},
		{"o", Object{{"x", ninf}}},
		{"s", "NaN"},
		{"s2", "-Infinity"},
	}
	if diff := cmp.Diff(want, r.Data, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if v, _ := r.Data.Get("t"); !math.IsNaN(v.(float64)) {
		t.Errorf("NaN decoded as %#v", v)
	}
}

func TestParseReplyRejectsNonPythonForms(t *testing.T) {
	for _, v := range []string{"nan", "-NaN", "+Infinity", "infinity", "Inf", "-Inf", "NaNx", "Infinit", "- Infinity", "01", "1.", ".5", "1e", "+1", "-", "tru", "nul"} {
		line := hdr + `"data": {"v": ` + v + `}}`
		_, err := ParseReply([]byte(line))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("value %s: error %v, want a *DecodeError", v, err)
			continue
		}
		if de.Line != line {
			t.Errorf("value %s: DecodeError.Line = %q", v, de.Line)
		}
		if de.Offset < 0 || de.Offset > len(line) {
			t.Errorf("value %s: offset %d", v, de.Offset)
		}
	}
	// Not as a key either.
	if _, err := ParseReply([]byte(hdr + `"data": {NaN: 1}}`)); err == nil {
		t.Error("NaN accepted as a key")
	}
}

func TestDecodeErrorCarriesLine(t *testing.T) {
	buf := []byte(hdr + `"data": {"a": [1, 2}}`)
	_, err := ParseReply(buf)
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a *DecodeError", err)
	}
	want := string(buf)
	copy(buf, "XXXXXXXX") // the caller reuses its buffer
	if de.Line != want {
		t.Errorf("Line = %q, want %q", de.Line, want)
	}
	if !strings.Contains(err.Error(), "at byte") || strings.Contains(err.Error(), want) {
		t.Errorf("message %q", err.Error())
	}
	// Structural errors too.
	for _, line := range []string{`[1]`, hdr + `"data": [1]}`, `{"header": {"command_id": "x"}}`, `{"header": {"command_id": 1.5}}`, `{"header": {"sender": 3}}`, `{"header": {"internal": "yes"}}`} {
		_, err := ParseReply([]byte(line))
		if !errors.As(err, &de) || de.Line != line || de.Offset != -1 {
			t.Errorf("%s: %v (%+v)", line, err, de)
		}
	}
}

func TestParseReplyHeaderLikeEncodingJSON(t *testing.T) {
	r := mustParse(t, `{"header": {"Command_ID": 4, "SENDER": "a", "sender": "b", "commander_id": null, "internal": true, "extra": [1, {"x": 2}]}, "data": null, "header": 5, "data": 7}`)
	want := Header{CommandID: 4, Sender: "b", Internal: true}
	if r.Header != want {
		t.Errorf("header %+v, want %+v", r.Header, want)
	}
	if r.Data == nil || len(r.Data) != 0 {
		t.Errorf("data %#v, want empty", r.Data)
	}
}

// TestPythonLines: lines written by Python's json.dumps (testdata, made
// with CPython's json module) decode, NaN and infinities included.
func TestPythonLines(t *testing.T) {
	f, err := os.Open("testdata/python_lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		r := mustParse(t, sc.Text())
		if r.Header.Sender == "" || r.Header.CommanderID == "" {
			t.Errorf("line %d: header %+v", n, r.Header)
		}
		checkRelay(t, r)
	}
	if n != 7 {
		t.Fatalf("%d lines", n)
	}
	r := mustParse(t, firstLine(t, 3))
	vals, _ := r.Data.Get("values")
	want := []any{math.NaN(), math.Inf(1), math.Inf(-1), json.Number("1e-07"), json.Number("1e+16"), json.Number("123.0"),
		json.Number("-0.0"), json.Number("2.5e+300"), json.Number("0.1")}
	if diff := cmp.Diff(want, vals, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	r = mustParse(t, firstLine(t, 4))
	if txt, _ := r.Data.Get("text"); txt != "café ☃ 😀 \"quoted\" back\\slash\ttab\nnl \x01" {
		t.Errorf("text %q", txt)
	}
	// Relayed as the original does.
	r = mustParse(t, firstLine(t, 2))
	st, _ := r.Data.Get("status")
	got := opscore.FormatReply(1, 2, opscore.Info, opscore.KW("status", r.Header.Sender, st))
	if want := "1 2 i status=gfa1,gfa1n,ML4240,inf,-inf,0,0,2048,2048,nan"; got != want {
		t.Errorf("relayed as %q, want %q", got, want)
	}
	r = mustParse(t, firstLine(t, 5))
	got = opscore.FormatReply(0, 0, opscore.Info, relayKeywords(r)...)
	if want := "0 0 i xraw=fvc,x; xRAW=fvc,1,2; nested=fvc,\"{\\\"b\\\":[NaN,null,true,false]}\""; got != want {
		t.Errorf("relayed as %q, want %q", got, want)
	}
}

func firstLine(t *testing.T, n int) string {
	b, err := os.ReadFile("testdata/python_lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\n")[n-1]
}

// relayKeywords builds the keywords as fliswarm relays a reply: one per
// data key, the sender first.
func relayKeywords(r Reply) []opscore.Keyword {
	var kws []opscore.Keyword
	for _, f := range r.Data {
		kws = append(kws, opscore.KW(f.Key, r.Header.Sender, f.Value))
	}
	return kws
}

// checkRelay: the relayed line parses with the opscore reply parser, with
// no keyword named raw.
func checkRelay(t *testing.T, r Reply) {
	t.Helper()
	line := opscore.FormatReply(1, 2, opscore.Warning, relayKeywords(r)...)
	pr, err := opscore.ParseReply(line)
	if err != nil {
		t.Fatalf("relayed line %q does not parse: %v", line, err)
	}
	if len(pr.Keywords) != len(r.Data) {
		t.Fatalf("relayed line %q has %d keywords, want %d", line, len(pr.Keywords), len(r.Data))
	}
	kws, err := opscore.ParseKeywords(line[len("1 2 w "):])
	if err != nil || len(kws) != len(r.Data) {
		t.Fatalf("ParseKeywords(%q) = %d, %v", line, len(kws), err)
	}
	for _, k := range pr.Keywords {
		if opscore.ReservedName(k.Name) {
			t.Fatalf("relayed line %q has a reserved keyword", line)
		}
	}
}

// referenceParse is the encoding/json decoder ParseReply replaced: on
// strict JSON both must agree exactly.
func referenceParse(line []byte) (Reply, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := refValue(dec, 0)
	if err != nil {
		return Reply{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return Reply{}, errors.New("trailing data")
	}
	obj, ok := v.(Object)
	if !ok {
		return Reply{}, errors.New("not an object")
	}
	var r Reply
	h, ok := obj.Get("header")
	hobj, isObj := h.(Object)
	if !ok || !isObj || len(hobj) == 0 {
		return Reply{}, ErrNoHeader
	}
	raw, err := json.Marshal(hobj)
	if err != nil {
		return Reply{}, err
	}
	if err := json.Unmarshal(raw, &r.Header); err != nil {
		return Reply{}, err
	}
	r.Data = Object{}
	if d, ok := obj.Get("data"); ok && d != nil {
		dobj, ok := d.(Object)
		if !ok {
			return Reply{}, errors.New("data is not an object")
		}
		r.Data = dobj
	}
	return r, nil
}

func refValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				val, err := refValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, Field{Key: key, Value: val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			list := []any{}
			for dec.More() {
				val, err := refValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	}
	return tok, nil
}

func TestParseReplyMatchesEncodingJSON(t *testing.T) {
	for _, line := range []string{
		`{"header": {"command_id": 1}, "data": {"s": "a\u00e9\ud83d\ude00\ud800x\udc00\u0000\/\b\f\n\r\t\"\\", "bad": "` + "\xff\xfe" + `"}}`,
		`{"header": {"command_id": -0, "sender": "x"}, "data": {"n": [0, -1, 1.5e10, 2E-3, -0.0, 12345678901234567890]}}`,
		` {"header":{"command_id":9223372036854775807}} ` + "\n",
		`{"header": {"command_id": 9223372036854775808}}`,
		`{"header": {"command_id": 1e2}}`,
		`{"header": {"x": 1}}`,
		`{"header": {"command_id": 1}, "data": {"a": {}, "b": [], "c": [[]], "a": 2}}`,
	} {
		want, werr := referenceParse([]byte(line))
		got, err := ParseReply([]byte(line))
		if (werr == nil) != (err == nil) || errors.Is(werr, ErrNoHeader) != errors.Is(err, ErrNoHeader) {
			t.Errorf("%s: error %v, encoding/json says %v", line, err, werr)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-encoding/json +ParseReply):\n%s", line, diff)
		}
	}
}

// FuzzParseReplyPython: lines as Python's json.dumps writes them, with
// arbitrary floats (NaN and infinities included) and strings, decode to
// the values written, and relay to lines the opscore parser accepts.
func FuzzParseReplyPython(f *testing.F) {
	f.Add(math.NaN(), math.Inf(1), "NaN", "raw")
	f.Add(math.Inf(-1), 1e-7, "Infinity", "RAW")
	f.Add(-0.0, 1e300, "a \"b\" \\ \u00e9 \U0001F600 \x01", "text")
	f.Add(123.0, 0.1, "", "")
	f.Fuzz(func(t *testing.T, a, b float64, s, key string) {
		line := `{"header": {"command_id": 7, "commander_id": "abc", "message_code": "i", "internal": false, "sender": "gfa1"}, "data": {` +
			pyString(key) + `: {"camera": "gfa1n", "a": ` + pyFloat(a) + `, "l": [` + pyFloat(b) + `, ` + pyString(s) + `, null, true]}, "t": ` + pyString(s) + `}}`
		r, err := ParseReply([]byte(line))
		if err != nil {
			t.Fatalf("ParseReply(%s): %v", line, err)
		}
		v, _ := r.Data.Get(strings.ToValidUTF8(key, "\uFFFD"))
		o, ok := v.(Object)
		if !ok || len(o) != 3 {
			t.Fatalf("%s: data %#v", line, r.Data)
		}
		checkFloat(t, line, o[1].Value, a)
		l := o[2].Value.([]any)
		checkFloat(t, line, l[0], b)
		if want := strings.ToValidUTF8(s, "\uFFFD"); l[1] != want {
			t.Fatalf("%s: string %q, want %q", line, l[1], want)
		}
		checkRelay(t, r)
	})
}

func checkFloat(t *testing.T, line string, got any, want float64) {
	t.Helper()
	if math.IsNaN(want) || math.IsInf(want, 0) {
		g, ok := got.(float64)
		if !ok || !(math.IsNaN(want) && math.IsNaN(g) || g == want) {
			t.Fatalf("%s: %#v, want %v", line, got, want)
		}
		return
	}
	n, ok := got.(json.Number)
	if !ok {
		t.Fatalf("%s: %#v, want json.Number", line, got)
	}
	if g, err := n.Float64(); err != nil || g != want {
		t.Fatalf("%s: %s reads as %v (%v), want %v", line, n, g, err, want)
	}
}

// pyFloat writes f as Python's float repr (json.dumps's form).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := fmt.Sprintf("%v", f)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

// pyString writes s as json.dumps does (ensure_ascii: non-ASCII as \u
// escapes, surrogate pairs above U+FFFF). Invalid UTF-8 is written as
// U+FFFD, as a Python str could not hold it.
func pyString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r >= 0x7f && r < 0x10000:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
