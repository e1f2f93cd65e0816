package opscore

import (
	"net"
	"syscall"

	"github.com/sdss/fliswarm/pkg/internal/rawsock"
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
	if rc := rawsock.Of(nc); rc != nil {
		return sysRawWriter{rc}
	}
	return nil
}

// tryWrite returns how many bytes of b the socket took. An error (a full
// buffer, a closed connection) is left for the writer to meet.
func (w sysRawWriter) tryWrite(b []byte) int { return rawsock.WriteNow(w.rc, b) }
