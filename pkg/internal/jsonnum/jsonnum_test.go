package jsonnum

import (
	"encoding/json"
	"math"
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

// FuzzAppendFloat: every finite float is written as encoding/json writes
// it, as a float64 and as a float32.
func FuzzAppendFloat(f *testing.F) {
	for _, v := range []float64{0, -0.0, 1, -2.5, 1e-7, 1e-6, 9.99e-7, 1e20, 1e21, 123456789e-30, 3.4e38, 5e-324} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		want, _ := json.Marshal(v)
		if got := AppendFloat([]byte("x"), v, 64); string(got) != "x"+string(want) {
			t.Fatalf("AppendFloat(%v, 64) = %s, want x%s", v, got, want)
		}
		if v32 := float32(v); !math.IsInf(float64(v32), 0) {
			want, _ := json.Marshal(v32)
			if got := AppendFloat(nil, float64(v32), 32); string(got) != string(want) {
				t.Fatalf("AppendFloat(%v, 32) = %s, want %s", v32, got, want)
			}
		}
	})
}
