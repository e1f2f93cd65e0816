package opscore

// Code is a one-character opscore message code.
type Code byte

// The message codes of the protocol.
const (
	Running Code = '>'
	Info    Code = 'i'
	Debug   Code = 'd'
	Warning Code = 'w'
	Error   Code = 'e'
	Done    Code = ':'
	Failed  Code = 'f'
	Fatal   Code = '!'
)

// Terminal reports whether the code ends a command.
func (c Code) Terminal() bool { return c == Done || c == Failed || c == Fatal }

// String returns the code as its single character.
func (c Code) String() string { return string(rune(c)) }

// Keyword is one `name=value,value` item of a reply. A keyword with no
// values is written as the bare name.
//
// Values may be string, bool, any Go integer or float, json.Number, nil,
// []any, or any value with a `Values() []any` method (an ordered object,
// flattened one level).
type Keyword struct {
	Name   string
	Values []any
}

// KW builds a keyword.
func KW(name string, values ...any) Keyword { return Keyword{Name: name, Values: values} }
