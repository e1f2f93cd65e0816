package linesession

import (
	"errors"
	"net"
	"syscall"
)

// rawConnOf returns conn's raw socket for writes that never wait (see
// writeNow); nil when conn is not a socket.
func rawConnOf(conn net.Conn) syscall.RawConn {
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

// writeNow writes as much of b as the socket takes without waiting and
// returns how much that was; the rest is the caller's to write. A full
// buffer, an error or an expired write deadline take nothing: the caller's
// ordinary write meets them.
func writeNow(rc syscall.RawConn, b []byte) int {
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
