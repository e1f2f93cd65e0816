package clu

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sdss/fliswarm/pkg/internal/jsonnum"
)

// ErrNoHeader is returned for a line with no header or an empty one; the
// protocol says such a line is ignored.
var ErrNoHeader = errors.New("clu: reply without header")

// DecodeError is a reply line that could not be decoded: it is not JSON
// (Python's NaN, Infinity and -Infinity aside), not an object, or its header
// or data have the wrong types. Line holds the line as it was received, so
// that the caller can relay the raw text; the error's message does not
// include it.
type DecodeError struct {
	// Line is the line as received (a copy: the caller may reuse its buffer).
	Line string
	// Offset is the byte offset in Line where the syntax error was found,
	// or -1 when the line is valid JSON with the wrong structure or types.
	Offset int
	// Reason says what is wrong.
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Offset >= 0 {
		return fmt.Sprintf("clu: bad reply line at byte %d: %s", e.Offset, e.Reason)
	}
	return "clu: bad reply line: " + e.Reason
}

// maxDepth bounds nesting so a hostile line cannot exhaust the stack.
const maxDepth = 64

// ParseReply decodes one reply line (a trailing newline and surrounding
// JSON whitespace are allowed). A line with no header, or an empty header,
// yields ErrNoHeader; any other problem a *DecodeError carrying the line.
// It never panics, whatever the input.
//
// The grammar is JSON's plus the three words Python's json.dumps writes for
// the non-finite floats, accepted wherever a value may be (not as keys, and
// a string "NaN" stays a string): NaN, Infinity and -Infinity decode to the
// float64 values math.NaN(), math.Inf(1) and math.Inf(-1). Finite numbers
// are kept as written, as json.Number. Strings are unescaped as
// encoding/json does (invalid UTF-8 and lone surrogates become U+FFFD).
// The header's fields are matched like encoding/json matches struct fields
// (case-insensitively, the last one wins); command_id must be an integer.
// The first "header" and the first "data" key are used.
//
// The strings of the result share memory with one copy of line.
func ParseReply(line []byte) (Reply, error) {
	d := decoders.Get().(*decoder)
	d.s = string(line)
	d.pos = 0
	r, err := d.reply()
	d.reset()
	decoders.Put(d)
	return r, err
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// decoder is a recursive-descent JSON decoder over one line. Containers
// collect their elements on shared stacks and copy them out once, so that
// each container costs one allocation.
type decoder struct {
	s   string
	pos int

	errPos int
	errMsg string

	vals   []any
	fields []Field
}

// reset drops every reference the decoder holds before it goes back to
// the pool.
func (d *decoder) reset() {
	d.s = ""
	d.errMsg = ""
	clear(d.vals[:cap(d.vals)])
	clear(d.fields[:cap(d.fields)])
	d.vals, d.fields = d.vals[:0], d.fields[:0]
	if cap(d.vals) > 4096 {
		d.vals = nil
	}
	if cap(d.fields) > 4096 {
		d.fields = nil
	}
}

// Boxed non-finite values, so that returning them allocates nothing.
var (
	nanValue    any = math.NaN()
	posInfValue any = math.Inf(1)
	negInfValue any = math.Inf(-1)
)

// fail records the first syntax error and returns false.
func (d *decoder) fail(format string, args ...any) bool {
	if d.errMsg == "" {
		d.errPos = d.pos
		d.errMsg = fmt.Sprintf(format, args...)
	}
	return false
}

func (d *decoder) lineError(reason string, offset int) *DecodeError {
	return &DecodeError{Line: d.s, Offset: offset, Reason: reason}
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.s) {
		switch d.s[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// describe names the byte at the current position for an error message.
func (d *decoder) describe() string {
	if d.pos >= len(d.s) {
		return "end of line"
	}
	return "character " + strconv.QuoteRune(rune(d.s[d.pos]))
}

func (d *decoder) reply() (Reply, error) {
	d.skipSpace()
	if d.pos >= len(d.s) || d.s[d.pos] != '{' {
		if _, ok := d.value(0); !ok {
			return Reply{}, d.lineError(d.errMsg, d.errPos)
		}
		if !d.end() {
			return Reply{}, d.lineError(d.errMsg, d.errPos)
		}
		return Reply{}, d.lineError("not a JSON object", -1)
	}
	d.pos++
	var (
		r             Reply
		sawHeader     bool
		headerObject  bool
		headerFields  int
		headerErr     string
		data          any
		sawData       bool
		dataNotObject bool
	)
	ok := d.members(func(key string) bool {
		switch {
		case key == "header" && !sawHeader:
			sawHeader = true
			if d.pos < len(d.s) && d.s[d.pos] == '{' {
				headerObject = true
				return d.header(&r.Header, &headerFields, &headerErr)
			}
			_, ok := d.value(1)
			return ok
		case key == "data" && !sawData:
			sawData = true
			if d.pos < len(d.s) && d.s[d.pos] == '{' {
				var ok bool
				r.Data, ok = d.object(1)
				return ok
			}
			var ok bool
			data, ok = d.value(1)
			dataNotObject = data != nil
			return ok
		}
		_, ok := d.value(1)
		return ok
	})
	if !ok || !d.end() {
		return Reply{}, d.lineError(d.errMsg, d.errPos)
	}
	if !headerObject || headerFields == 0 {
		return Reply{}, ErrNoHeader
	}
	if headerErr != "" {
		return Reply{}, d.lineError("bad header: "+headerErr, -1)
	}
	if dataNotObject {
		return Reply{}, d.lineError("data is not an object", -1)
	}
	if r.Data == nil {
		r.Data = Object{} // never nil: absent and null data read as empty
	}
	return r, nil
}

// end checks that only whitespace follows the top-level value.
func (d *decoder) end() bool {
	d.skipSpace()
	if d.pos < len(d.s) {
		return d.fail("%s after the top-level value", d.describe())
	}
	return true
}

// members reads the members of an object whose '{' has been consumed, up
// to and including its '}', calling member for each key with the position
// at the value.
func (d *decoder) members(member func(key string) bool) bool {
	d.skipSpace()
	if d.pos < len(d.s) && d.s[d.pos] == '}' {
		d.pos++
		return true
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.s) || d.s[d.pos] != '"' {
			return d.fail("%s looking for an object key", d.describe())
		}
		key, ok := d.str()
		if !ok {
			return false
		}
		d.skipSpace()
		if d.pos >= len(d.s) || d.s[d.pos] != ':' {
			return d.fail("%s after an object key", d.describe())
		}
		d.pos++
		d.skipSpace()
		if !member(key) {
			return false
		}
		d.skipSpace()
		if d.pos >= len(d.s) {
			return d.fail("end of line inside an object")
		}
		switch d.s[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return true
		default:
			return d.fail("%s after an object value", d.describe())
		}
	}
}

// header reads the header object into h the way encoding/json fills a
// struct: keys matched case-insensitively, the last one wins, unknown keys
// ignored, null leaves a field alone. A type mismatch is recorded in
// *typeErr (the first one) without stopping the syntax check.
func (d *decoder) header(h *Header, n *int, typeErr *string) bool {
	d.pos++ // '{'
	mismatch := func(key, want string) {
		if *typeErr == "" {
			*typeErr = fmt.Sprintf("%s is not %s", strconv.Quote(key), want)
		}
	}
	return d.members(func(key string) bool {
		*n++
		start := d.pos
		k, text, ok := d.scalar()
		if !ok {
			return false
		}
		if k == kindContainer {
			d.pos = start
			if _, ok := d.value(2); !ok {
				return false
			}
		}
		var target *string
		switch {
		case key == "command_id" || strings.EqualFold(key, "command_id"):
			switch {
			case k == kindNull:
			case k == kindNumber:
				id, err := strconv.ParseInt(text, 10, strconv.IntSize)
				if err != nil {
					mismatch(key, "an integer")
				} else {
					h.CommandID = int(id)
				}
			default:
				mismatch(key, "an integer")
			}
			return true
		case key == "internal" || strings.EqualFold(key, "internal"):
			switch k {
			case kindNull:
			case kindTrue, kindFalse:
				h.Internal = k == kindTrue
			default:
				mismatch(key, "a boolean")
			}
			return true
		case key == "commander_id" || strings.EqualFold(key, "commander_id"):
			target = &h.CommanderID
		case key == "message_code" || strings.EqualFold(key, "message_code"):
			target = &h.MessageCode
		case key == "sender" || strings.EqualFold(key, "sender"):
			target = &h.Sender
		default:
			return true
		}
		switch k {
		case kindNull:
		case kindString:
			*target = text
		default:
			mismatch(key, "a string")
		}
		return true
	})
}

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
