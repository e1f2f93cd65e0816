package clu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Message codes, shared with the opscore protocol.
const (
	CodeRunning = ">"
	CodeInfo    = "i"
	CodeDebug   = "d"
	CodeWarning = "w"
	CodeError   = "e"
	CodeDone    = ":"
	CodeFailed  = "f"
	CodeFatal   = "!"
)

// IsTerminal reports whether a message code ends a command.
func IsTerminal(code string) bool {
	return code == CodeDone || code == CodeFailed || code == CodeFatal
}

// Header is the header of a reply.
type Header struct {
	CommandID   int    `json:"command_id"`
	CommanderID string `json:"commander_id"`
	MessageCode string `json:"message_code"`
	Internal    bool   `json:"internal"`
	Sender      string `json:"sender"`
}

// Field is one key of an ordered object.
type Field struct {
	Key   string
	Value any
}

// Object is a JSON object with its key order preserved. Values are
// string, json.Number, bool, nil, []any or Object.
type Object []Field

// Get returns the value of key and whether it is present.
func (o Object) Get(key string) (any, bool) {
	for _, f := range o {
		if f.Key == key {
			return f.Value, true
		}
	}
	return nil, false
}

// Values returns the values in order. It lets an opscore encoder flatten
// the object without knowing this package.
func (o Object) Values() []any {
	out := make([]any, len(o))
	for i, f := range o {
		out[i] = f.Value
	}
	return out
}

// MarshalJSON writes the object with its keys in order.
func (o Object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.Key)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Reply is one reply line from a camera actor.
type Reply struct {
	Header Header `json:"header"`
	Data   Object `json:"data"`
}

// ErrNoHeader is returned for a line with no header or an empty one; the
// protocol says such a line is ignored.
var ErrNoHeader = errors.New("clu: reply without header")

// ParseReply decodes one reply line. A line with no header, or an empty
// header, yields ErrNoHeader.
func ParseReply(line []byte) (Reply, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return Reply{}, fmt.Errorf("clu: bad reply line: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Reply{}, errors.New("clu: bad reply line: trailing data after the object")
	}
	obj, ok := v.(Object)
	if !ok {
		return Reply{}, errors.New("clu: bad reply line: not a JSON object")
	}
	var r Reply
	h, ok := obj.Get("header")
	hobj, isObj := h.(Object)
	if !ok || !isObj || len(hobj) == 0 {
		return Reply{}, ErrNoHeader
	}
	raw, err := json.Marshal(hobj)
	if err != nil {
		return Reply{}, err
	}
	if err := json.Unmarshal(raw, &r.Header); err != nil {
		return Reply{}, fmt.Errorf("clu: bad reply header: %w", err)
	}
	r.Data = Object{} // never nil: absent and null data read as empty
	if d, ok := obj.Get("data"); ok && d != nil {
		dobj, ok := d.(Object)
		if !ok {
			return Reply{}, errors.New("clu: bad reply: data is not an object")
		}
		r.Data = dobj
	}
	return r, nil
}

// maxDepth bounds nesting so a hostile line cannot exhaust the stack.
const maxDepth = 64

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := Object{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, errors.New("object key is not a string")
				}
				val, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				obj = append(obj, Field{Key: key, Value: val})
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return obj, nil
		case '[':
			list := []any{}
			for dec.More() {
				val, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				list = append(list, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return list, nil
		default:
			return nil, fmt.Errorf("unexpected %v", t)
		}
	default:
		return t, nil // string, json.Number, bool, nil
	}
}

// MarshalReply encodes a reply as one line, without the trailing newline.
func MarshalReply(r Reply) ([]byte, error) {
	data := r.Data
	if data == nil {
		data = Object{}
	}
	return json.Marshal(struct {
		Header Header `json:"header"`
		Data   Object `json:"data"`
	}{r.Header, data})
}

// FormatCommand renders a command line as sent to a camera actor, with the
// trailing newline.
func FormatCommand(id int, command string) []byte {
	return []byte(strconv.Itoa(id) + " " + command + "\n")
}

// ParseCommand splits a command line received by a camera actor into its id
// and command string. A line without a leading integer id has id 0.
func ParseCommand(line string) (id int, command string, err error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return 0, "", errors.New("clu: empty command")
	}
	first, rest, _ := strings.Cut(line, " ")
	n, convErr := strconv.Atoi(first)
	if convErr != nil || n < 0 {
		return 0, line, nil
	}
	return n, strings.TrimSpace(rest), nil
}
