package jsonnum

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in      string
		n       int
		problem string
	}{
		{"0", 1, ""}, {"-0", 2, ""}, {"12.5e-3,", 7, ""}, {"1E+9}", 4, ""}, {"-", 0, "in a number"},
		{"01", 1, ""}, {"1.", 0, "after a decimal point"}, {"1e", 0, "in an exponent"}, {"x", 0, "in a number"}, {"", 0, "in a number"},
	} {
		n, _, problem := Scan(tc.in)
		if n != tc.n || problem != tc.problem {
			t.Errorf("Scan(%q) = %d, %q; want %d, %q", tc.in, n, problem, tc.n, tc.problem)
		}
	}
}

// FuzzIs checks Is against encoding/json's idea of a number.
func FuzzIs(f *testing.F) {
	for _, s := range []string{"0", "-1.5e3", "1.", "01", "+1", "1e+", ".5", "NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Is(s), json.Valid([]byte(s)) && isNumberToken(s); got != want {
			t.Errorf("Is(%q) = %v, want %v", s, got, want)
		}
	})
}

// isNumberToken is encoding/json's view: s is one JSON number token and
// nothing else.
func isNumberToken(s string) bool {
	if s == "" || strings.ContainsAny(s[:1], " \t\r\n") {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	tok, err := dec.Token()
	if _, ok := tok.(json.Number); !ok || err != nil {
		return false
	}
	return dec.InputOffset() == int64(len(s))
}
