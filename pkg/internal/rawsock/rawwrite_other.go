//go:build !unix

package rawsock

import "errors"

// rawWrite takes nothing: every line goes through the writer.
func rawWrite(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
