// Package rawsock writes to a socket without waiting: as much as its
// buffer takes now, the rest left to the caller's ordinary write. The
// relay's senders use it to put a reply on the wire from the goroutine
// that has it, without a hand-off (pkg/opscore, pkg/linesession).
package rawsock

import (
	"errors"
	"net"
	"syscall"
)

// Of returns conn's raw socket; nil when conn is not a socket.
func Of(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// WriteNow writes as much of b as the socket takes without waiting and
// returns how much that was. A full buffer, an error or an expired write
// deadline take nothing: the caller's ordinary write meets them.
func WriteNow(rc syscall.RawConn, b []byte) int {
	if rc == nil {
		return 0
	}
	n := 0
	_ = rc.Write(func(fd uintptr) bool {
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
