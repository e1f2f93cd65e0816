// Package jsonnum reads and writes numbers in JSON syntax, for the two
// hand-written codecs that need it: the camera-line codec (pkg/clu) and
// the opscore keyword encoder, which writes a JSON number unquoted and
// floats as encoding/json does.
package jsonnum

import (
	"math"
	"strconv"
)

// Scan reads the number in JSON syntax at the start of s. It returns its
// length; or, when s does not start with a whole number, the position of
// the first byte that does not fit and what was expected there ("in a
// number", "after a decimal point", "in an exponent").
func Scan(s string) (n int, at int, problem string) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return 0, i, "in a number"
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return 0, i, "after a decimal point"
		}
		i = digits(s, i)
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return 0, i, "in an exponent"
		}
		i = digits(s, i)
	}
	return i, 0, ""
}

// Is reports whether s is exactly one number in JSON syntax.
func Is(s string) bool {
	n, _, problem := Scan(s)
	return problem == "" && n == len(s)
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func digits(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// AppendFloat writes the finite float f (of bits 32 or 64) as
// encoding/json does: the shortest form that reads back the same, in
// exponent form below 1e-6 and from 1e21, with a two-digit negative
// exponent cut to one digit (1e-7, not 1e-07). The non-finite values have
// no JSON form; each caller writes them its own way first.
func AppendFloat(dst []byte, f float64, bits int) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		n := len(dst) - start
		if n >= 4 && dst[len(dst)-4] == 'e' && dst[len(dst)-3] == '-' && dst[len(dst)-2] == '0' {
			dst[len(dst)-2] = dst[len(dst)-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}
