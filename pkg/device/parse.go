package device

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sdss/fliswarm/pkg/clu"
)

// parseReply decodes one camera reply line. A hand-written decoder takes
// the common shape of a reply (a header of the five protocol fields, data
// of plain JSON values) in one pass; whatever it does not take — anything
// unusual, and every malformed line — is decoded by clu.ParseReply, which
// is the reference: the fast path either gives exactly what clu.ParseReply
// gives or steps aside (FuzzParseReply checks it).
func parseReply(line []byte) (clu.Reply, error) {
	if r, ok := fastParse(line); ok {
		return r, nil
	}
	return clu.ParseReply(line)
}

// fastMaxDepth bounds nesting in the fast path (clu allows more and
// decides the rest).
const fastMaxDepth = 16

var errSlow = errors.New("not for the fast path")

type scanner struct {
	b []byte
	i int
}

func fastParse(line []byte) (clu.Reply, bool) {
	s := scanner{b: line}
	var r clu.Reply
	s.ws()
	if !s.eat('{') {
		return r, false
	}
	var haveHeader, haveData bool
	s.ws()
	if s.peek() != '}' {
		for {
			s.ws()
			key, err := s.str()
			if err != nil {
				return r, false
			}
			s.ws()
			if !s.eat(':') {
				return r, false
			}
			s.ws()
			switch key {
			case "header":
				if haveHeader || s.header(&r.Header) != nil {
					return r, false
				}
				haveHeader = true
			case "data":
				if haveData {
					return r, false
				}
				haveData = true
				if s.lit("null") {
					break
				}
				v, err := s.object(0)
				if err != nil {
					return r, false
				}
				r.Data = v
			default:
				if _, err := s.value(0); err != nil {
					return r, false
				}
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return r, false
		}
	} else {
		s.i++
	}
	s.ws()
	if s.i != len(s.b) || !haveHeader {
		return r, false
	}
	if r.Data == nil {
		r.Data = clu.Object{}
	}
	return r, true
}

// header reads the header object: only the five protocol fields, each at
// most once, with their JSON types; at least one of them.
func (s *scanner) header(h *clu.Header) error {
	if !s.eat('{') {
		return errSlow
	}
	s.ws()
	if s.eat('}') {
		return errSlow // an empty header: clu says ErrNoHeader
	}
	var seen [5]bool
	once := func(k int) error {
		if seen[k] {
			return errSlow
		}
		seen[k] = true
		return nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if !s.eat(':') {
			return errSlow
		}
		s.ws()
		switch key {
		case "command_id":
			if err := once(0); err != nil {
				return err
			}
			n, err := s.int()
			if err != nil {
				return err
			}
			h.CommandID = n
		case "commander_id":
			if err := once(1); err != nil {
				return err
			}
			if h.CommanderID, err = s.str(); err != nil {
				return err
			}
		case "message_code":
			if err := once(2); err != nil {
				return err
			}
			if h.MessageCode, err = s.str(); err != nil {
				return err
			}
		case "internal":
			if err := once(3); err != nil {
				return err
			}
			switch {
			case s.lit("true"):
				h.Internal = true
			case s.lit("false"):
				h.Internal = false
			default:
				return errSlow
			}
		case "sender":
			if err := once(4); err != nil {
				return err
			}
			if h.Sender, err = s.str(); err != nil {
				return err
			}
		default:
			return errSlow
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return errSlow
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// lit consumes a literal word (true, false, null) followed by a delimiter.
func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	if j := s.i + len(w); j < len(s.b) && isWordByte(s.b[j]) {
		return false
	}
	s.i += len(w)
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '+' || c == '-'
}

func (s *scanner) value(depth int) (any, error) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.list(depth + 1)
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case s.lit("true"):
		return true, nil
	case s.lit("false"):
		return false, nil
	case s.lit("null"):
		return nil, nil
	}
	return nil, errSlow
}

func (s *scanner) object(depth int) (clu.Object, error) {
	if depth > fastMaxDepth || !s.eat('{') {
		return nil, errSlow
	}
	obj := clu.Object{}
	s.ws()
	if s.eat('}') {
		return obj, nil
	}
	for {
		s.ws()
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		s.ws()
		if !s.eat(':') {
			return nil, errSlow
		}
		s.ws()
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		obj = append(obj, clu.Field{Key: key, Value: v})
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return obj, nil
		}
		return nil, errSlow
	}
}

func (s *scanner) list(depth int) ([]any, error) {
	if depth > fastMaxDepth || !s.eat('[') {
		return nil, errSlow
	}
	list := []any{}
	s.ws()
	if s.eat(']') {
		return list, nil
	}
	for {
		s.ws()
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		list = append(list, v)
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return list, nil
		}
		return nil, errSlow
	}
}

// number reads a JSON number as json.Number.
func (s *scanner) number() (json.Number, error) {
	start := s.i
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return "", errSlow
	}
	if s.eat('.') {
		if s.digits() == 0 {
			return "", errSlow
		}
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if s.digits() == 0 {
			return "", errSlow
		}
	}
	if s.i < len(s.b) && isWordByte(s.b[s.i]) {
		return "", errSlow
	}
	return json.Number(s.b[start:s.i]), nil
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// int reads an integer command id as encoding/json puts it in an int.
func (s *scanner) int() (int, error) {
	num, err := s.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(num), 10, 0)
	if err != nil {
		return 0, errSlow
	}
	return int(n), nil
}

// str reads a JSON string. Escapes are decoded like encoding/json does;
// invalid UTF-8 and lone surrogates are left to the slow path.
func (s *scanner) str() (string, error) {
	if !s.eat('"') {
		return "", errSlow
	}
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(raw) {
				return "", errSlow
			}
			return string(raw), nil
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return "", errSlow
		case c >= 0x80:
			ascii = false
		}
		s.i++
	}
	return "", errSlow
}

// escaped finishes a string that has escapes, from its start.
func (s *scanner) escaped(start int) (string, error) {
	buf := make([]byte, 0, s.i-start+16)
	buf = append(buf, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(buf) {
				return "", errSlow
			}
			return string(buf), nil
		case c < 0x20:
			return "", errSlow
		case c != '\\':
			buf = append(buf, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return "", errSlow
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", errSlow
			}
			if utf16.IsSurrogate(r) {
				if s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
					return "", errSlow
				}
				s.i += 2
				r2, ok := s.hex4()
				if !ok {
					return "", errSlow
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", errSlow
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", errSlow
		}
	}
	return "", errSlow
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}
