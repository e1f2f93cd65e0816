package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ErrStreamEnded is wrapped by the error an event stream reports when the
// engine ended it (closed the connection or sent something unreadable),
// as opposed to the caller's context ending it.
var ErrStreamEnded = errors.New("event stream ended")

// TimeoutError is the cause of an error from a call that the per-call
// timeout cut off (the caller's own context was still live).
type TimeoutError struct {
	// After is the timeout that expired.
	After time.Duration
	// Answered tells that the engine had started to answer (a pull was
	// streaming progress) when time ran out: the engine is slow, not gone.
	Answered bool
	// Err is what the SDK returned, usually context.DeadlineExceeded.
	Err error
}

func (e *TimeoutError) Error() string {
	if e.Answered {
		return fmt.Sprintf("not finished within %s: %v", e.After, e.Err)
	}
	return fmt.Sprintf("no answer within %s: %v", e.After, e.Err)
}

func (e *TimeoutError) Unwrap() error { return e.Err }

// IsNotFound tells whether err says the container, image or volume asked
// for does not exist (an errdefs NotFound error, as the SDK maps HTTP 404).
func IsNotFound(err error) bool {
	return err != nil && cerrdefs.IsNotFound(err)
}

// IsConflict tells whether err is the engine refusing because of the
// object's state (HTTP 409: a name already in use, a volume in use, a
// running container removed without force, a removal already in progress).
func IsConflict(err error) bool {
	return err != nil && cerrdefs.IsConflict(err)
}

// IsUnreachable tells whether err means the engine is not answering: the
// connection was refused, reset or timed out, there is no route to the
// node, its name does not resolve, the socket is missing, or the per-call
// timeout expired before any answer. An error the engine itself sent back
// (whatever its text) is not one, and neither is the caller's own context
// ending.
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	if te, ok := errors.AsType[*TimeoutError](err); ok {
		return !te.Answered
	}
	if client.IsErrConnectionFailed(err) {
		return true
	}
	for _, errno := range unreachableErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Timeout() &&
		!errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	return false
}

// unreachableErrnos are the socket errors that mean nobody is answering at
// the engine's address.
var unreachableErrnos = []error{
	syscall.ECONNREFUSED,
	syscall.ECONNRESET,
	syscall.ECONNABORTED,
	syscall.EHOSTUNREACH,
	syscall.EHOSTDOWN,
	syscall.ENETUNREACH,
	syscall.ENETDOWN,
	syscall.ETIMEDOUT,
	syscall.EPIPE,
	syscall.ENOENT, // unix socket missing
}
