// Package jsonnum reads a number in JSON syntax, for the two hand-written
// codecs that need it: the camera-line decoder (pkg/clu) and the opscore
// keyword encoder, which writes a JSON number unquoted.
package jsonnum

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
