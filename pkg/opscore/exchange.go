package opscore

import (
	"bufio"
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
	for {
		s, err := r.ReadString('\n')
		if err != nil {
			return Reply{}, err
		}
		rep, perr := ParseReply(strings.TrimRight(s, "\r\n"))
		if perr == nil && rep.CmdID == id && rep.Code.Terminal() {
			return rep, nil
		}
	}
}
