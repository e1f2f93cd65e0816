package clu

import (
	"encoding/json"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sdss/fliswarm/pkg/internal/jsonnum"
)

// kind is the kind of a scalar value (see scalar).
type kind uint8

const (
	kindString kind = iota
	kindNumber
	kindTrue
	kindFalse
	kindNull
	kindNaN
	kindPosInf
	kindNegInf
	kindContainer // '{' or '[' ahead, not consumed
)

// scalar reads a scalar value without boxing it: its kind and, for a
// string or a number, its text (unescaped, or as written). At '{' or '['
// it consumes nothing and returns kindContainer.
func (d *decoder) scalar() (kind, string, bool) {
	if d.pos >= len(d.s) {
		return 0, "", d.fail("end of line looking for a value")
	}
	switch c := d.s[d.pos]; c {
	case '{', '[':
		return kindContainer, "", true
	case '"':
		s, ok := d.str()
		return kindString, s, ok
	case 't':
		return kindTrue, "", d.literal("true")
	case 'f':
		return kindFalse, "", d.literal("false")
	case 'n':
		return kindNull, "", d.literal("null")
	case 'N':
		return kindNaN, "", d.literal("NaN")
	case 'I':
		return kindPosInf, "", d.literal("Infinity")
	case '-':
		if d.pos+1 < len(d.s) && d.s[d.pos+1] == 'I' {
			return kindNegInf, "", d.literal("-Infinity")
		}
		s, ok := d.number()
		return kindNumber, s, ok
	default:
		if c >= '0' && c <= '9' {
			s, ok := d.number()
			return kindNumber, s, ok
		}
		return 0, "", d.fail("%s looking for a value", d.describe())
	}
}

func (d *decoder) literal(word string) bool {
	if !strings.HasPrefix(d.s[d.pos:], word) {
		return d.fail("invalid literal (expected %s)", word)
	}
	d.pos += len(word)
	return true
}

// value reads any value, boxed.
func (d *decoder) value(depth int) (any, bool) {
	if depth > maxDepth {
		return nil, d.fail("nesting deeper than %d", maxDepth)
	}
	k, text, ok := d.scalar()
	if !ok {
		return nil, false
	}
	switch k {
	case kindString:
		return text, true
	case kindNumber:
		return json.Number(text), true
	case kindTrue:
		return true, true
	case kindFalse:
		return false, true
	case kindNull:
		return nil, true
	case kindNaN:
		return nanValue, true
	case kindPosInf:
		return posInfValue, true
	case kindNegInf:
		return negInfValue, true
	}
	if d.s[d.pos] == '{' {
		obj, ok := d.object(depth)
		if !ok {
			return nil, false
		}
		return obj, true
	}
	d.pos++ // '['
	start := len(d.vals)
	d.skipSpace()
	if d.pos < len(d.s) && d.s[d.pos] == ']' {
		d.pos++
		return []any{}, true
	}
	for {
		d.skipSpace()
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		d.vals = append(d.vals, v)
		d.skipSpace()
		if d.pos >= len(d.s) {
			return nil, d.fail("end of line inside an array")
		}
		if c := d.s[d.pos]; c == ']' {
			d.pos++
			break
		} else if c != ',' {
			return nil, d.fail("%s after an array element", d.describe())
		}
		d.pos++
	}
	list := make([]any, len(d.vals)-start)
	copy(list, d.vals[start:])
	clear(d.vals[start:])
	d.vals = d.vals[:start]
	return list, true
}

// object reads an object, at its '{'.
func (d *decoder) object(depth int) (Object, bool) {
	d.pos++
	start := len(d.fields)
	ok := d.members(func(key string) bool {
		v, ok := d.value(depth + 1)
		d.fields = append(d.fields, Field{Key: key, Value: v})
		return ok
	})
	if !ok {
		return nil, false
	}
	obj := make(Object, len(d.fields)-start)
	copy(obj, d.fields[start:])
	clear(d.fields[start:])
	d.fields = d.fields[:start]
	return obj, true
}

// number reads a number in JSON syntax and returns its text.
func (d *decoder) number() (string, bool) {
	start := d.pos
	n, at, problem := jsonnum.Scan(d.s[start:])
	if problem != "" {
		d.pos = start + at
		return "", d.fail("%s %s", d.describe(), problem)
	}
	d.pos = start + n
	return d.s[start:d.pos], true
}

// str reads a string literal (at its opening quote) and returns it
// unescaped. A string without escapes or invalid UTF-8 is a slice of the
// line, with no copy.
func (d *decoder) str() (string, bool) {
	s := d.s
	start := d.pos + 1
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return s[start:i], true
		case c == '\\' || c < 0x20:
			return d.strSlow(start, i)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return d.strSlow(start, i)
			}
			i += size
		}
	}
	d.pos = len(s)
	return "", d.fail("end of line inside a string")
}

// strSlow finishes a string from i, which holds an escape, a control
// character or invalid UTF-8; s[start:i] is plain text.
func (d *decoder) strSlow(start, i int) (string, bool) {
	s := d.s
	b := make([]byte, 0, len(s[start:i])+16)
	b = append(b, s[start:i]...)
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return string(b), true
		case c < 0x20:
			d.pos = i
			return "", d.fail("control character %q in a string", c)
		case c == '\\':
			if i+1 >= len(s) {
				d.pos = len(s)
				return "", d.fail("end of line inside a string")
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := hex4(s[i+2:])
				if !ok {
					d.pos = i
					return "", d.fail("invalid \\u escape in a string")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(s[min(i+2, len(s)):]); ok && strings.HasPrefix(s[i:], `\u`) {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				d.pos = i
				return "", d.fail("invalid escape %q in a string", "\\"+string(e))
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	d.pos = len(s)
	return "", d.fail("end of line inside a string")
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for i := range 4 {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
