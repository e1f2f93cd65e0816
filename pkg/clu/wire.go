package clu

import (
	"errors"
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

// Object is a JSON object with its key order preserved. As decoded by
// ParseReply, values are string, json.Number (every finite number, as
// written), float64 (only the non-finite numbers NaN, +Inf and -Inf, read
// from the bare words NaN, Infinity and -Infinity that Python's json module
// writes), bool, nil, []any or Object.
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

// NumValues returns the number of fields; with ValueAt it lets an opscore
// encoder walk the values without the copy Values makes.
func (o Object) NumValues() int { return len(o) }

// ValueAt returns the value of the i-th field.
func (o Object) ValueAt(i int) any { return o[i].Value }

// Reply is one reply line from a camera actor.
type Reply struct {
	Header Header `json:"header"`
	Data   Object `json:"data"`
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
