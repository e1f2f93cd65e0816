package opscore

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// Bad input is logged at most badLogBurst lines at once per server, and
// one more every badLogEvery after that.
const (
	badLogBurst = 5
	badLogEvery = time.Second / badLogBurst
)

// readLoop reads command lines until the connection ends; it reports
// whether it ended cleanly (the user closed its sending side).
func (c *conn) readLoop() bool {
	br := bufio.NewReaderSize(c.nc, c.srv.maxLine+2) // room for "\r\n"
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			prefix := string(line)
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			c.lineTooLong(prefix)
		} else if len(line) > 0 {
			c.handleLine(string(line))
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

func (c *conn) lineTooLong(prefix string) {
	l, _, _ := splitHeader(trimBlanks(prefix))
	c.logBad("command line too long", "user", c.id, "cmdID", l.ID, "max", c.srv.maxLine)
	c.reply(c.id, l.ID, Failed,
		ErrorKW(c.srv.actor, fmt.Sprintf("command line longer than %d bytes", c.srv.maxLine)))
}

// logBad logs a problem with the user's input, rate-limited per server so
// that a client sending garbage cannot flood the log; the next line logged
// says how many were suppressed.
func (c *conn) logBad(msg string, keysAndValues ...any) {
	ok, suppressed := c.srv.badLog.Allow()
	if !ok {
		return
	}
	if suppressed > 0 {
		keysAndValues = append(keysAndValues, "suppressed", suppressed)
	}
	c.srv.log.Info(msg, keysAndValues...)
}
