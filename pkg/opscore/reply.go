package opscore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reply is one parsed reply line, `<uid> <cmdId> <code> <keywords>`.
type Reply struct {
	// UserID is the user the reply is for; 0 for a broadcast.
	UserID int
	// CmdID is the id of the command replied to; 0 when unsolicited.
	CmdID int
	// Code is the message code.
	Code Code
	// Keywords hold the keywords in order; every value is a string, with
	// quotes removed and `\"`, `\\` (and `\'` in single quotes) unescaped.
	Keywords []Keyword
	// Line is the line as received, without its newline.
	Line string
}

// String returns the reply line: Line when set, otherwise the line the
// reply's fields encode to.
func (r Reply) String() string {
	if r.Line != "" {
		return r.Line
	}
	return FormatReply(r.UserID, r.CmdID, r.Code, r.Keywords...)
}

// Get returns the first keyword called name.
func (r Reply) Get(name string) (Keyword, bool) {
	for _, k := range r.Keywords {
		if k.Name == name {
			return k, true
		}
	}
	return Keyword{}, false
}

// ParseReply parses a reply line written by an opscore actor. It follows
// the opscore reply grammar: ids are `0` or digits without a leading zero,
// the one-character code is one of the protocol's codes and is followed by
// at least one blank, keywords are `name[=value[,value...]]` separated by
// `;`, a name matches [A-Za-z][A-Za-z0-9_.]* and is not the reserved raw
// (in any case; see ReservedName), a bare value is
// [^"'\s=,;]+ and a quoted value is in double or single quotes. It rejects
// what opscore rejects: `key=`, a trailing `;`, an unterminated quote, text
// right after a closing quote. Unlike opscore, which keeps escapes as
// written, it unescapes `\"` and `\\` (and `\'` inside single quotes), so
// that it is the exact inverse of this package's encoder.
func ParseReply(line string) (Reply, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	r := Reply{Line: line}
	rest := line
	var err error
	if r.UserID, rest, err = headerNumber(rest, "user id"); err != nil {
		return Reply{}, err
	}
	if r.CmdID, rest, err = headerNumber(rest, "command id"); err != nil {
		return Reply{}, err
	}
	if rest == "" {
		return Reply{}, errors.New("opscore: reply has no code")
	}
	r.Code = Code(rest[0])
	if !r.Code.Valid() {
		return Reply{}, fmt.Errorf("opscore: reply has an unknown code %q", rest[0])
	}
	rest = rest[1:]
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return Reply{}, errors.New("opscore: reply code is not followed by a blank")
	}
	if r.Keywords, err = ParseKeywords(rest); err != nil {
		return Reply{}, err
	}
	return r, nil
}

// headerNumber reads a number and the blanks after it (at least one).
func headerNumber(s, what string) (int, string, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, "", fmt.Errorf("opscore: reply has no %s", what)
	}
	if i > 1 && s[0] == '0' {
		return 0, "", fmt.Errorf("opscore: reply %s %q has a leading zero", what, s[:i])
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil {
		return 0, "", fmt.Errorf("opscore: reply %s %q is out of range", what, s[:i])
	}
	rest := strings.TrimLeft(s[i:], " \t")
	if len(rest) == len(s)-i {
		return 0, "", fmt.Errorf("opscore: reply %s is not followed by a blank", what)
	}
	return n, rest, nil
}

// ParseKeywords parses the keyword part of a reply line (see ParseReply).
// A string of only blanks holds no keywords.
func ParseKeywords(s string) ([]Keyword, error) {
	p := kwParser{s: s}
	var kws []Keyword
	p.skipBlanks()
	if p.eof() {
		return nil, nil
	}
	for {
		k, err := p.keyword()
		if err != nil {
			return nil, err
		}
		kws = append(kws, k)
		p.skipBlanks()
		if p.eof() {
			return kws, nil
		}
		if p.peek() != ';' {
			return nil, p.errorf("expected ; or the end of the line")
		}
		p.pos++
		p.skipBlanks()
		if p.eof() {
			return nil, p.errorf("trailing ;")
		}
	}
}

type kwParser struct {
	s   string
	pos int
}

func (p *kwParser) eof() bool  { return p.pos >= len(p.s) }
func (p *kwParser) peek() byte { return p.s[p.pos] }

func (p *kwParser) errorf(format string, args ...any) error {
	return fmt.Errorf("opscore: bad keywords at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *kwParser) skipBlanks() {
	for !p.eof() && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *kwParser) keyword() (Keyword, error) {
	name := p.word()
	if name == "" {
		return Keyword{}, p.errorf("expected a keyword name")
	}
	if !ValidName(name) {
		return Keyword{}, p.errorf("invalid keyword name %q", name)
	}
	k := Keyword{Name: name}
	p.skipBlanks()
	if p.eof() || p.peek() != '=' {
		return k, nil
	}
	p.pos++
	for {
		v, err := p.value()
		if err != nil {
			return Keyword{}, err
		}
		k.Values = append(k.Values, v)
		p.skipBlanks()
		if p.eof() || p.peek() != ',' {
			return k, nil
		}
		p.pos++
	}
}

func (p *kwParser) value() (string, error) {
	p.skipBlanks()
	if p.eof() {
		return "", p.errorf("missing value")
	}
	if q := p.peek(); q == '"' || q == '\'' {
		return p.quoted(q)
	}
	w := p.word()
	if w == "" {
		return "", p.errorf("missing value")
	}
	return w, nil
}

// word reads a bare word, [^"'\s=,;]*.
func (p *kwParser) word() string {
	start := p.pos
	for !p.eof() {
		r, size := utf8.DecodeRuneInString(p.s[p.pos:])
		if r == '"' || r == '\'' || r == '=' || r == ',' || r == ';' ||
			unicode.IsSpace(r) || isPySpace(r) {
			break
		}
		p.pos += size
	}
	return p.s[start:p.pos]
}

func (p *kwParser) quoted(q byte) (string, error) {
	start := p.pos
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.eof() {
			p.pos = start
			return "", p.errorf("unterminated quote")
		}
		c := p.s[p.pos]
		switch {
		case c == q:
			p.pos++
			if !p.eof() {
				if n := p.peek(); n != ' ' && n != '\t' && n != ',' && n != ';' {
					return "", p.errorf("text after a closing quote")
				}
			}
			return b.String(), nil
		case c == '\n':
			return "", p.errorf("newline inside quotes")
		case c == '\\' && p.pos+1 < len(p.s):
			n := p.s[p.pos+1]
			if n != '\\' && n != q {
				b.WriteByte('\\')
			}
			b.WriteByte(n)
			p.pos += 2
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}
