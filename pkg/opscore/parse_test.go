package opscore

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		in      string
		want    Line
		wantErr string // ParseError reason; "" for success
	}{
		{in: "status", want: Line{Verb: "status", Raw: "status"}},
		{in: "status\n", want: Line{Verb: "status", Raw: "status"}},
		{in: "status\r\n", want: Line{Verb: "status", Raw: "status"}},
		{in: "7 status", want: Line{ID: 7, Verb: "status", Raw: "status"}},
		{in: "  7\tstatus  ", want: Line{ID: 7, Verb: "status", Raw: "status"}},
		{in: "0 ping", want: Line{ID: 0, Verb: "ping", Raw: "ping"}},
		{in: "007 ping", want: Line{ID: 7, Verb: "ping", Raw: "ping"}},
		{
			in: "APO.Jose 12 talk -n gfa1,gfa2 expose 5",
			want: Line{Commander: "APO.Jose", ID: 12, Verb: "talk",
				Args: []string{"-n", "gfa1,gfa2", "expose", "5"}, Raw: "talk -n gfa1,gfa2 expose 5"},
		},
		{
			in:   "jaeger.jaeger 3 4 reconnect --force",
			want: Line{Commander: "jaeger.jaeger", ID: 3, Verb: "reconnect", Args: []string{"--force"}, Raw: "reconnect --force"},
		},
		{in: "APO.Jose status", want: Line{Commander: "APO.Jose", Verb: "status", Raw: "status"}},
		{
			in:   `talk expose 5 --filename "my file.fits"`,
			want: Line{Verb: "talk", Args: []string{"expose", "5", "--filename", "my file.fits"}, Raw: `talk expose 5 --filename "my file.fits"`},
		},
		{in: `x 'a "b" c'`, want: Line{Verb: "x", Args: []string{`a "b" c`}, Raw: `x 'a "b" c'`}},
		{in: `x "a \"b\" \\ \n"`, want: Line{Verb: "x", Args: []string{`a "b" \ \n`}, Raw: `x "a \"b\" \\ \n"`}},
		{in: `x a\ b c\"d`, want: Line{Verb: "x", Args: []string{"a b", `c"d`}, Raw: `x a\ b c\"d`}},
		{in: `x pre"mid dle"post ''`, want: Line{Verb: "x", Args: []string{"premid dlepost", ""}, Raw: `x pre"mid dle"post ''`}},
		{in: `x a;b|c>d #e $HOME`, want: Line{Verb: "x", Args: []string{"a;b|c>d", "#e", "$HOME"}, Raw: `x a;b|c>d #e $HOME`}},
		{in: "x ünïcödé", want: Line{Verb: "x", Args: []string{"ünïcödé"}, Raw: "x ünïcödé"}},
		// A word with a dot in first place is a commander; anywhere else it is not.
		{in: "5 a.b c", want: Line{ID: 5, Verb: "a.b", Args: []string{"c"}, Raw: "a.b c"}},
		{in: `"a.b" c`, want: Line{Verb: "a.b", Args: []string{"c"}, Raw: `"a.b" c`}},

		// Errors, with the id kept when it could be read.
		{in: `APO.Jose 12 talk "unterminated`, want: Line{Commander: "APO.Jose", ID: 12, Raw: `talk "unterminated`}, wantErr: "unterminated double quote"},
		{in: `3 x 'open`, want: Line{ID: 3, Raw: `x 'open`}, wantErr: "unterminated single quote"},
		{in: `3 x \`, want: Line{ID: 3, Raw: `x \`}, wantErr: "nothing after a trailing backslash"},
		{in: "APO.Jose 12", want: Line{Commander: "APO.Jose", ID: 12}, wantErr: "no command given"},
		{in: "12 4", want: Line{ID: 12}, wantErr: "no command given"},
		{in: "APO.Jose", want: Line{Commander: "APO.Jose"}, wantErr: "no command given"},
		{in: `4 "" x`, want: Line{ID: 4, Raw: `"" x`}, wantErr: "no command given"},
		{in: "99999999999999999999999 status", wantErr: `command id "99999999999999999999999" is out of range`},
		{in: "8 st\xffatus", want: Line{ID: 8}, wantErr: "command line is not valid UTF-8"},
		{in: "9 st\x00atus", want: Line{ID: 9}, wantErr: "command line contains control characters"},
		{in: "9 a\nb", want: Line{ID: 9}, wantErr: "command line contains control characters"},
		{in: "\x1b[A", wantErr: "command line contains control characters"},
		{in: "x \u0085", wantErr: "command line contains control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLine(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseLine(%q) error %v", tt.in, err)
				}
			} else {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("ParseLine(%q) error = %v, want a *ParseError", tt.in, err)
				}
				if pe.Reason != tt.wantErr {
					t.Errorf("reason = %q, want %q", pe.Reason, tt.wantErr)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ParseLine(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestParseLineEmpty(t *testing.T) {
	for _, in := range []string{"", "\n", "\r\n", "   ", " \t \r\n"} {
		if _, err := ParseLine(in); !errors.Is(err, ErrEmptyLine) {
			t.Errorf("ParseLine(%q) error = %v, want ErrEmptyLine", in, err)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"a b  c", []string{"a", "b", "c"}},
		{`"" ''`, []string{"", ""}},
		{`"a'b" 'c"d'`, []string{"a'b", `c"d`}},
		{`"\$\` + "`" + `\x"`, []string{"$`\\x"}},
		{`'\'`, []string{`\`}},
		{`\\`, []string{`\`}},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if err != nil {
			t.Errorf("SplitWords(%q) error %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("SplitWords(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}
