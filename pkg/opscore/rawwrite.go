package opscore

import (
	"errors"
	"net"
	"syscall"
)

// rawWriter writes to a socket without waiting: as much as the socket's
// buffer takes now. It is how a command's last lines are written by their
// sender (see conn.enqueue); nil for a connection that is not a socket.
type rawWriter interface {
	tryWrite(b []byte) int
}

type sysRawWriter struct{ rc syscall.RawConn }

// rawWriterFor makes a connection's rawWriter; tests replace it to make a
// socket take less than it is given.
var rawWriterFor = newRawWriter

func newRawWriter(nc net.Conn) rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return sysRawWriter{rc}
}

// tryWrite returns how many bytes of b the socket took. An error (a full
// buffer, a closed connection) is left for the writer to meet.
func (w sysRawWriter) tryWrite(b []byte) int {
	n := 0
	_ = w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := rawWrite(fd, b[n:])
			if m > 0 {
				n += m
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || m <= 0 {
				break
			}
		}
		return true // never wait for the socket
	})
	return n
}
