package opscore

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// CleanString returns s as it goes on the wire before quoting: invalid
// UTF-8 replaced by U+FFFD and every control character by a space.
func CleanString(s string) string {
	if utf8.ValidString(s) && !hasAnyControl(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }

func hasAnyControl(s string) bool {
	for _, r := range s {
		if isControl(r) {
			return true
		}
	}
	return false
}

// needsQuotes reports whether a cleaned string cannot be written bare: an
// opscore bare word is [^"'\s=,;]+.
func needsQuotes(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		switch r {
		case '"', '\'', '=', ',', ';':
			return true
		}
		if unicode.IsSpace(r) || isPySpace(r) {
			return true
		}
	}
	return false
}

// isPySpace covers the runes Python's \s matches that unicode.IsSpace does
// not (the information separators U+001C..U+001F; those are control
// characters and replaced anyway, listed for completeness).
func isPySpace(r rune) bool { return r >= 0x1c && r <= 0x1f }

func appendString(dst []byte, s string, forceQuotes bool) []byte {
	// Fast path: printable ASCII, the common case, in one pass.
	quote, escapes := forceQuotes || s == "", false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return appendStringSlow(dst, s, forceQuotes)
		}
		switch c {
		case ' ', '\'', '=', ',', ';':
			quote = true
		case '"':
			quote, escapes = true, true
		case '\\':
			escapes = true
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	if !escapes {
		dst = append(dst, s...)
		return append(dst, '"')
	}
	return appendEscaped(dst, s)
}

func appendStringSlow(dst []byte, s string, forceQuotes bool) []byte {
	s = CleanString(s)
	if !forceQuotes && !needsQuotes(s) {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	return appendEscaped(dst, s)
}

// appendEscaped writes s with `"` and `\` escaped, and the closing quote.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}
