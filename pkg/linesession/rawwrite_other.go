//go:build !unix

package linesession

import "errors"

// rawWrite takes nothing: every command line is written the ordinary way.
func rawWrite(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
