package clu

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
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
