package device

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/sdss/fliswarm/pkg/clu"
	"github.com/sdss/fliswarm/pkg/linesession"
)

// maxQuoted bounds how much of an undecodable line is relayed.
const maxQuoted = 4096

// decode is the session's Decode: a camera reply line, routed by its
// command_id. A line with no header is skipped, as the protocol says; a
// line that cannot be decoded becomes an undecodable-line reply.
func (c *Client) decode(line []byte) (clu.Reply, int, bool, error) {
	r, err := clu.ParseReply(line)
	if err == nil {
		return r, r.Header.CommandID, clu.IsTerminal(r.Header.MessageCode), nil
	}
	if errors.Is(err, clu.ErrNoHeader) {
		return clu.Reply{}, 0, false, linesession.ErrSkip
	}
	if ok, suppressed := c.badLines.Allow(); ok {
		c.log.Error(err, "undecodable camera line relayed as a warning", "line", truncate(line, 200), "suppressed", suppressed)
	}
	return c.undecodable(line, UndecodableText+truncate(line, maxQuoted))
}

// decodeLong is the session's DecodeLong.
func (c *Client) decodeLong(prefix []byte, length int) (clu.Reply, int, bool, error) {
	if ok, suppressed := c.badLines.Allow(); ok {
		c.log.Error(nil, "camera line longer than the limit skipped", "length", length, "limit", c.opts.MaxLineBytes, "suppressed", suppressed)
	}
	return c.undecodable(prefix, UndecodableText+"line of "+strconv.Itoa(length)+" bytes, longer than the limit of "+
		strconv.Itoa(c.opts.MaxLineBytes)+", skipped: "+truncate(prefix, 200))
}

// undecodable makes the reply that stands for a line that could not be
// decoded: to the command whose id the line seems to carry (ending it, as
// a failure, when it seems to be its last reply), otherwise unsolicited.
func (c *Client) undecodable(line []byte, text string) (clu.Reply, int, bool, error) {
	id := guessInt(line, `"command_id"`)
	code := clu.CodeWarning
	terminal := false
	if m := guessString(line, `"message_code"`); clu.IsTerminal(m) {
		code, terminal = clu.CodeFailed, true
	}
	return clu.Reply{
		Header: clu.Header{CommandID: id, MessageCode: code, Sender: c.name},
		Data:   clu.Object{{Key: "text", Value: text}},
	}, id, terminal, nil
}

// guessValue returns what follows `key` and a colon in line.
func guessValue(line []byte, key string) []byte {
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(line[i+len(key):], " \t")
	if len(rest) == 0 || rest[0] != ':' {
		return nil
	}
	return bytes.TrimLeft(rest[1:], " \t")
}

func guessInt(line []byte, key string) int {
	v := guessValue(line, key)
	n := 0
	for i := 0; i < len(v) && i < 9 && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + int(v[i]-'0')
	}
	return n
}

func guessString(line []byte, key string) string {
	v := guessValue(line, key)
	if len(v) >= 3 && v[0] == '"' && v[2] == '"' {
		return string(v[1:2])
	}
	return ""
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// UndecodableText starts the text of the reply a Client makes of a camera
// line it cannot decode (see Options.OnUnsolicited).
const UndecodableText = "undecodable camera line: "
