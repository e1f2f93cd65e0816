package opscore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply // Line is filled in by the test
	}{
		{"1 13 : ", Reply{UserID: 1, CmdID: 13, Code: Done}},
		{"1 13 :   \n", Reply{UserID: 1, CmdID: 13, Code: Done}},
		{"0 0 i UserInfo=2,127.0.0.1", Reply{Code: Info, Keywords: []Keyword{KW("UserInfo", "2", "127.0.0.1")}}},
		{"1 0 i yourUserID=1; num_users=2\r\n", Reply{UserID: 1, Code: Info,
			Keywords: []Keyword{KW("yourUserID", "1"), KW("num_users", "2")}}},
		{`1 0 i version="1.2.3"`, Reply{UserID: 1, Code: Info, Keywords: []Keyword{KW("version", "1.2.3")}}},
		{"2\t7\tw\ttext = \"a b\" ;flag ; x=1 , 2", Reply{UserID: 2, CmdID: 7, Code: Warning,
			Keywords: []Keyword{KW("text", "a b"), {Name: "flag"}, KW("x", "1", "2")}}},
		{`3 4 f error="say \"hi\" \\ \n"`, Reply{UserID: 3, CmdID: 4, Code: Failed,
			Keywords: []Keyword{KW("error", `say "hi" \ \n`)}}},
		{`3 4 i q='it\'s "x"',""`, Reply{UserID: 3, CmdID: 4, Code: Info, Keywords: []Keyword{KW("q", `it's "x"`, "")}}},
		{`3 4 i a.b_c=-1.5e3,T,NA,C:\x`, Reply{UserID: 3, CmdID: 4, Code: Info,
			Keywords: []Keyword{KW("a.b_c", "-1.5e3", "T", "NA", `C:\x`)}}},
		{"5 6 ! ", Reply{UserID: 5, CmdID: 6, Code: Fatal}},
		{"5 6 > ", Reply{UserID: 5, CmdID: 6, Code: Running}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseReply(tt.in)
			if err != nil {
				t.Fatalf("ParseReply(%q): %v", tt.in, err)
			}
			tt.want.Line = got.Line
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseReplyRejects lists what opscore parsers reject, which is also
// what the encoder must never write.
func TestParseReplyRejects(t *testing.T) {
	for _, in := range []string{
		"",
		"1 13 :",          // no space after the code
		"1 13 :text=a",    // no space after the code
		"1 13",            // no code
		"1 13 ",           // no code
		"a 13 : ",         // bad uid
		"01 13 : ",        // leading zero
		"1 013 : ",        // leading zero
		"1 1x : ",         // id not followed by a blank
		"1 13 z ",         // unknown code
		"1 13 : key=",     // empty value
		"1 13 : key= ",    // empty value
		"1 13 : key=a,",   // empty value in a list
		"1 13 : key=,a",   // empty value in a list
		"1 13 : a=1;",     // trailing ;
		"1 13 : a=1; ",    // trailing ;
		"1 13 : a=1;;b=2", // empty keyword
		"1 13 : ;a=1",     // empty keyword
		`1 13 : t="open`,  // unterminated quote
		`1 13 : t="a\"`,   // unterminated quote (escaped)
		`1 13 : t='open`,  // unterminated quote
		`1 13 : t="a"b`,   // text after a closing quote
		`1 13 : t="a""b"`, // text after a closing quote
		`1 13 : t="a" "b"`,
		"1 13 : t=a b",      // unquoted value with a space
		"1 13 : t=a\u00a0b", // unquoted value with a Unicode space
		"1 13 : 9a=1",       // bad name
		"1 13 : _a=1",       // bad name
		"1 13 : a b=1",      // two names
		"1 13 : a==1",
		"1 13 : =1",
		`1 13 : "a"=1`,
		"1 13 : t=\"a\nb\"",
	} {
		if r, err := ParseReply(in); err == nil {
			t.Errorf("ParseReply(%q) = %+v, want an error", in, r)
		}
	}
}

func TestReplyGet(t *testing.T) {
	r, err := ParseReply("1 2 i a=1; b=2; a=3")
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := r.Get("a"); !ok || k.Values[0] != "1" {
		t.Errorf("Get(a) = %v, %v; want the first a", k, ok)
	}
	if _, ok := r.Get("c"); ok {
		t.Error("Get(c) found a keyword that is not there")
	}
}

func TestReplyString(t *testing.T) {
	r, err := ParseReply("1  2 i a=\"x y\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.String(); got != `1  2 i a="x y"` {
		t.Errorf("String() = %q, want the line as received", got)
	}
	r.Line = ""
	if got := r.String(); got != `1 2 i a="x y"` {
		t.Errorf("String() without Line = %q", got)
	}
}
