package opscore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Exchange sends one command as `<id> <body>` on w and reads replies from
// r, on the caller's goroutine, until the command's terminal reply, which
// it returns; other replies (the `>`, relayed lines, broadcasts) are
// skipped. It is the plain way a script talks to an actor, one command at
// a time, and how the benchmarks time a round trip without a client's own
// goroutines in the way. Use Client for concurrent commands.
func Exchange(w io.Writer, r *bufio.Reader, id int, body string) (Reply, error) {
	if strings.ContainsAny(body, "\r\n") {
		return Reply{}, fmt.Errorf("opscore: a command may not contain a newline")
	}
	line := strconv.AppendInt(make([]byte, 0, len(body)+12), int64(id), 10)
	line = append(append(append(line, ' '), body...), '\n')
	if _, err := w.Write(line); err != nil {
		return Reply{}, err
	}
	return ReadReplies(r, id, nil)
}

// ReadReplies reads reply lines from r until the terminal reply of command
// id, which it returns; every other line (newline included, valid until
// the next read) goes to each, when not nil. It looks only at a line's
// command id and code before the end, so it keeps up with a flood.
func ReadReplies(r *bufio.Reader, id int, each func(line []byte)) (Reply, error) {
	var long []byte // a line longer than r's buffer
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, line...)
			continue
		}
		if err != nil {
			return Reply{}, err
		}
		if long != nil {
			line, long = append(long, line...), nil
		}
		if endsCommand(line, id) {
			return ParseReply(strings.TrimRight(string(line), "\r\n"))
		}
		if each != nil {
			each(line)
		}
	}
}

// endsCommand reports whether line, `<uid> <cmdId> <code> ...`, is the
// terminal reply of command id. It allocates nothing.
func endsCommand(line []byte, id int) bool {
	var field [3][]byte
	for i := range field {
		line = bytes.TrimLeft(line, " ")
		end := bytes.IndexAny(line, " \r\n")
		if end < 0 {
			end = len(line)
		}
		field[i], line = line[:end], line[end:]
	}
	if len(field[2]) != 1 || !Code(field[2][0]).Terminal() {
		return false
	}
	n, err := strconv.Atoi(string(field[1]))
	return err == nil && n == id
}
