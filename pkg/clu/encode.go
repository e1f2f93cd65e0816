package clu

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/sdss/fliswarm/pkg/internal/jsonnum"
)

// MarshalJSON writes the object with its keys in order, compact, as
// encoding/json would except that the non-finite floats are written as
// Python's json.dumps writes them (NaN, Infinity, -Infinity), which
// ParseReply reads back, and that <, > and & are not escaped.
func (o Object) MarshalJSON() ([]byte, error) {
	return appendJSONObject(nil, o, 0)
}

func appendJSONObject(b []byte, o Object, depth int) ([]byte, error) {
	b = append(b, '{')
	for i, f := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, f.Key)
		b = append(b, ':')
		var err error
		if b, err = appendJSONValue(b, f.Value, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendJSONValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > 1000 {
		return nil, fmt.Errorf("clu: value nested too deep to encode")
	}
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, t), nil
	case json.Number:
		if t == "" {
			return append(b, '0'), nil // as encoding/json
		}
		if !isJSONNumber(string(t)) {
			return nil, fmt.Errorf("clu: invalid number literal %q", string(t))
		}
		return append(b, t...), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case float64:
		return appendJSONFloat(b, t, 64), nil
	case float32:
		return appendJSONFloat(b, float64(t), 32), nil
	case int:
		return strconv.AppendInt(b, int64(t), 10), nil
	case int64:
		return strconv.AppendInt(b, t, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(t), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(t), 10), nil
	case uint64:
		return strconv.AppendUint(b, t, 10), nil
	case Object:
		if t == nil {
			return append(b, "null"...), nil
		}
		return appendJSONObject(b, t, depth)
	case []any:
		if t == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	// Other kinds of floats (a named float type) keep the Python forms too.
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Float64 || rv.Kind() == reflect.Float32 {
		if f := rv.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return appendJSONFloat(b, f, 64), nil
		}
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("clu: %w", err)
	}
	return append(b, j...), nil
}

// appendJSONFloat writes f as encoding/json does, and the non-finite
// values as Python does.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	}
	return jsonnum.AppendFloat(b, f, bits)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string: control characters, `"`
// and `\` escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped (as
// encoding/json does); other text as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// isJSONNumber reports whether s is a number in JSON syntax.
func isJSONNumber(s string) bool {
	d := decoder{s: s}
	_, ok := d.number()
	return ok && d.pos == len(s)
}
