package opscore

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Line is a parsed command line: `[<commander>] [<cmdId> [<n>]] <body>`.
type Line struct {
	// Commander is the optional first word containing a dot, such as
	// "APO.Jose"; empty when the line has none.
	Commander string
	// ID is the command id (cmdId); 0 when the line has none.
	ID int
	// Verb is the first word of the body.
	Verb string
	// Args are the remaining words of the body, with quotes removed.
	Args []string
	// Raw is the body as written (verb and arguments, before splitting).
	Raw string
}

// ErrEmptyLine is returned by ParseLine for a line holding only blanks. The
// protocol says such a line is ignored: it gets no reply at all.
var ErrEmptyLine = errors.New("opscore: empty line")

// ParseError is a command line that cannot be parsed. The protocol answers
// it with a failure reply (`f`) carrying `error=<Reason>`.
type ParseError struct {
	// Reason says what is wrong, written for the user who sent the line.
	Reason string
}

func (e *ParseError) Error() string { return "opscore: " + e.Reason }

func parseErr(reason string) error { return &ParseError{Reason: reason} }

// ParseLine parses one command line as received from a user. A trailing
// "\n" or "\r\n" is removed first.
//
// The optional commander is the first word when it contains a dot; the
// optional command id is the next word when it is all digits (a second
// all-digit word after it is skipped). The rest is the body, split into
// words the way a POSIX shell (or Python's shlex.split) does: blanks
// separate words, single quotes keep everything literally, double quotes
// group words and let a backslash escape only a double quote, a backslash,
// a dollar or a backquote, and a backslash outside quotes escapes the next
// character.
//
// A line of only blanks yields ErrEmptyLine. Any other problem yields a
// *ParseError; the returned Line then still carries the Commander and ID
// when they could be read, so that the failure can be reported against the
// right command id.
func ParseLine(line string) (Line, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	rest := trimBlanks(line)
	if rest == "" {
		return Line{}, ErrEmptyLine
	}
	l, rest, err := splitHeader(rest)
	if err != nil {
		return l, err
	}
	if !utf8.ValidString(line) {
		return l, parseErr("command line is not valid UTF-8")
	}
	if hasControl(line) {
		return l, parseErr("command line contains control characters")
	}
	l.Raw = rest
	if rest == "" {
		return l, parseErr("no command given")
	}
	words, err := SplitWords(rest)
	if err != nil {
		return l, err
	}
	if len(words) == 0 || words[0] == "" {
		return l, parseErr("no command given")
	}
	l.Verb, l.Args = words[0], words[1:]
	return l, nil
}

// splitHeader reads the optional commander and command id (and the ignored
// second number) from the start of s, which must not start with a blank,
// and returns the rest.
func splitHeader(s string) (Line, string, error) {
	var l Line
	rest := s
	word, after := nextWord(rest)
	if isCommander(word) {
		l.Commander = word
		rest = after
		word, after = nextWord(rest)
	}
	if isDigits(word) {
		id, err := strconv.Atoi(word)
		if err != nil {
			return l, rest, parseErr("command id " + strconv.Quote(word) + " is out of range")
		}
		l.ID = id
		rest = after
		if word, after = nextWord(rest); isDigits(word) {
			rest = after
		}
	}
	return l, rest, nil
}

// SplitWords splits a command body into words like Python's shlex.split
// (POSIX mode, no comments). It fails with a *ParseError on an unterminated
// quote or a trailing lone backslash.
func SplitWords(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		quote   rune // 0, '\'' or '"'
		escaped bool // previous rune was a backslash (outside single quotes)
	)
	for _, r := range s {
		switch {
		case escaped:
			// Inside double quotes a backslash only escapes a few runes;
			// before any other rune it stays as written.
			if quote == '"' && r != '"' && r != '\\' && r != '$' && r != '`' {
				cur.WriteByte('\\')
			}
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case isBlank(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	switch {
	case quote == '\'':
		return nil, parseErr("unterminated single quote")
	case quote == '"':
		return nil, parseErr("unterminated double quote")
	case escaped:
		return nil, parseErr("nothing after a trailing backslash")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func isBlank(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

func trimBlanks(s string) string { return strings.Trim(s, " \t\r") }

// nextWord returns the first blank-separated word of s (which must not start
// with a blank) and the rest after the blanks that follow it.
func nextWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t\r")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t\r")
}

func isCommander(w string) bool {
	return strings.Contains(w, ".") && !strings.ContainsAny(w, `"'\`)
}

func isDigits(w string) bool {
	if w == "" {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < '0' || w[i] > '9' {
			return false
		}
	}
	return true
}

// hasControl reports whether s holds a control character other than tab or
// carriage return (C0, DEL or C1).
func hasControl(s string) bool {
	for _, r := range s {
		if r == '\t' || r == '\r' {
			continue
		}
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return true
		}
	}
	return false
}
