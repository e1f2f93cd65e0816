package opscore

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"

	"github.com/sdss/fliswarm/pkg/internal/jsonnum"
)

// Quoted is a string value that is always written in double quotes, even
// when it is a plain word (the greeting's `version="1.2.3"` uses it).
type Quoted string

// NA is how a nil value is written: the word the keyword dictionary already
// uses for a missing container or device.
const NA = "NA"

// maxFlattenDepth bounds how deep lists are flattened before the rest is
// written as a JSON string.
const maxFlattenDepth = 16

// FormatReply renders one reply line, `<uid> <cmdId> <code> <keywords>`,
// without the trailing newline. The space after the code is always there,
// also when there are no keywords (`1 13 : `). Negative ids are written as
// 0 and a code outside the protocol's table as `w`.
func FormatReply(uid, cmdID int, code Code, kws ...Keyword) string {
	b := getScratch()
	*b = AppendReply(*b, uid, cmdID, code, kws...)
	s := string(*b)
	putScratch(b)
	return s
}

// AppendReply appends the reply line of FormatReply to dst.
func AppendReply(dst []byte, uid, cmdID int, code Code, kws ...Keyword) []byte {
	dst = strconv.AppendInt(dst, int64(max(uid, 0)), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(max(cmdID, 0)), 10)
	dst = append(dst, ' ')
	if !code.Valid() {
		code = Warning
	}
	dst = append(dst, byte(code), ' ')
	return AppendKeywords(dst, kws...)
}

// Valid reports whether c is one of the protocol's codes.
func (c Code) Valid() bool {
	switch c {
	case Running, Info, Debug, Warning, Error, Done, Failed, Fatal:
		return true
	}
	return false
}

// EncodeKeywords renders keywords as `key=value; key=value`.
func EncodeKeywords(kws ...Keyword) string {
	b := getScratch()
	*b = AppendKeywords(*b, kws...)
	s := string(*b)
	putScratch(b)
	return s
}

// AppendKeywords appends the encoding of EncodeKeywords to dst.
func AppendKeywords(dst []byte, kws ...Keyword) []byte {
	for i, k := range kws {
		if i > 0 {
			dst = append(dst, "; "...)
		}
		dst = k.appendTo(dst)
	}
	return dst
}

// String renders the keyword as `name=value,value`, or the bare name when
// it has no values.
//
// The encoding never produces something opscore parsers reject:
//   - The name is written as SafeName returns it: it must match
//     [A-Za-z][A-Za-z0-9_.]*, so other characters are replaced by `_`, a
//     name not starting with a letter (also an empty one) gets an `x` in
//     front, and so does the reserved name raw (any case): a keyword named
//     raw is never written.
//   - Values are flattened into one comma-separated list: a list (any slice
//     or array except []byte) or an object (a value with a `Values() []any`
//     method, or `NumValues() int` and `ValueAt(int) any` methods, such as
//     clu.Object, or a map, whose values are taken in key order) contributes its elements in order, recursively like CLU's
//     format_value does for lists. An object directly inside an object (CLU
//     refuses those) and anything nested more than 16 levels deep is written
//     as one quoted JSON string instead. When nothing is left (no values, or
//     only empty lists) the bare name is written, never `name=`.
//   - bool is T or F; integers and json.Number (when it is a valid number)
//     are plain decimal; floats use the shortest decimal form, with an
//     exponent only below 1e-6 or from 1e21 on, and the non-finite ones
//     as the bare words nan, inf and -inf (as the original Python fliswarm
//     relays them); nil is NA.
//   - A string is written bare when it is a plain word, otherwise in double
//     quotes with `"` and `\` escaped by a backslash (the only escapes).
//     It is quoted when it is empty (`""`) or contains a blank or other
//     Unicode space, a comma, a semicolon, `=`, or a quote (' or ").
//     Control characters (newline, tab, ...) are replaced by a space and
//     invalid UTF-8 by U+FFFD, so a value never breaks the line.
//   - Quoted values are always quoted; an error or fmt.Stringer is written
//     as its text; anything else as fmt's %v text.
func (k Keyword) String() string { return string(k.appendTo(nil)) }

func (k Keyword) appendTo(dst []byte) []byte {
	dst = appendName(dst, k.Name)
	n := 0
	for _, v := range k.Values {
		dst = appendValue(dst, v, 0, false, &n)
	}
	return dst
}

// valuer is an ordered object, such as clu.Object.
type valuer interface{ Values() []any }

// indexed is an ordered object whose values can be read without a copy
// (clu.Object has these methods too).
type indexed interface {
	NumValues() int
	ValueAt(i int) any
}

// jsonText marks a value already rendered as JSON text (for nesting too
// deep to flatten); it is written as a quoted string.
type jsonText string

// appendValue writes the scalar values making up v, each preceded by `=`
// (the first of the keyword, counted in *n) or `,`. inObject tells whether
// v is a direct value of an object.
func appendValue(dst []byte, v any, depth int, inObject bool, n *int) []byte {
	sep := func(dst []byte) []byte {
		*n++
		if *n == 1 {
			return append(dst, '=')
		}
		return append(dst, ',')
	}
	if depth > maxFlattenDepth {
		return appendScalar(sep(dst), toJSON(v))
	}
	switch t := v.(type) {
	case string:
		return appendString(sep(dst), t, false)
	case nil, Quoted, bool, json.Number, jsonText,
		int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, uintptr,
		float32, float64:
		return appendScalar(sep(dst), t)
	case []byte:
		return appendString(sep(dst), string(t), false)
	case []any:
		for _, e := range t {
			dst = appendValue(dst, e, depth+1, false, n)
		}
		return dst
	case indexed:
		if inObject {
			return appendScalar(sep(dst), toJSON(v))
		}
		for i, m := 0, t.NumValues(); i < m; i++ {
			dst = appendValue(dst, t.ValueAt(i), depth+1, true, n)
		}
		return dst
	case valuer:
		if inObject {
			return appendScalar(sep(dst), toJSON(v))
		}
		for _, e := range t.Values() {
			dst = appendValue(dst, e, depth+1, true, n)
		}
		return dst
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.IsNil() {
		return appendScalar(sep(dst), nil)
	}
	switch v.(type) {
	case error, fmt.Stringer:
		return appendScalar(sep(dst), v)
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			dst = appendValue(dst, rv.Index(i).Interface(), depth+1, false, n)
		}
		return dst
	case reflect.Map:
		if inObject {
			return appendScalar(sep(dst), toJSON(v))
		}
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool {
			return fmt.Sprint(keys[i].Interface()) < fmt.Sprint(keys[j].Interface())
		})
		for _, key := range keys {
			dst = appendValue(dst, rv.MapIndex(key).Interface(), depth+1, true, n)
		}
		return dst
	case reflect.Pointer:
		return appendValue(dst, rv.Elem().Interface(), depth+1, inObject, n)
	}
	return appendScalar(sep(dst), v)
}

// toJSON renders v as JSON text. A value's own MarshalJSON is used as it
// is (clu.Object writes the non-finite floats as Python does, NaN and
// Infinity, which encoding/json would refuse); anything that cannot be
// rendered is written as fmt's %v text.
func toJSON(v any) (out jsonText) {
	defer func() {
		if recover() != nil {
			out = jsonText(fmt.Sprint(v))
		}
	}()
	if m, ok := v.(json.Marshaler); ok {
		if b, err := m.MarshalJSON(); err == nil {
			return jsonText(b)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return jsonText(fmt.Sprint(v))
	}
	return jsonText(b)
}

func appendScalar(dst []byte, v any) []byte {
	switch t := v.(type) {
	case nil:
		return append(dst, NA...)
	case string:
		return appendString(dst, t, false)
	case Quoted:
		return appendString(dst, string(t), true)
	case jsonText:
		return appendString(dst, string(t), true)
	case bool:
		if t {
			return append(dst, 'T')
		}
		return append(dst, 'F')
	case json.Number:
		if isJSONNumber(string(t)) {
			return append(dst, t...)
		}
		return appendString(dst, string(t), false)
	case int:
		return strconv.AppendInt(dst, int64(t), 10)
	case int8, int16, int32, int64:
		return strconv.AppendInt(dst, reflect.ValueOf(t).Int(), 10)
	case uint, uint8, uint16, uint32, uint64, uintptr:
		return strconv.AppendUint(dst, reflect.ValueOf(t).Uint(), 10)
	case float32:
		return appendFloat(dst, float64(t), 32)
	case float64:
		return appendFloat(dst, t, 64)
	case error, fmt.Stringer:
		// fmt recovers from a panicking method (say, on a nil pointer).
		return appendString(dst, fmt.Sprint(t), false)
	}
	// Named basic types (type Celsius float64) by their kind.
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Bool:
		return appendScalar(dst, rv.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(dst, rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(dst, rv.Uint(), 10)
	case reflect.Float32:
		return appendFloat(dst, rv.Float(), 32)
	case reflect.Float64:
		return appendFloat(dst, rv.Float(), 64)
	case reflect.String:
		return appendString(dst, rv.String(), false)
	}
	return appendString(dst, fmt.Sprint(v), false)
}

// appendFloat writes f the way encoding/json does; NaN and the
// infinities, which have no JSON number form, are written as nan, inf and
// -inf, the words Python's str(float) gives and the original relays.
func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	return jsonnum.AppendFloat(dst, f, bits)
}

// isJSONNumber reports whether s is a number in JSON syntax.
func isJSONNumber(s string) bool { return jsonnum.Is(s) }
