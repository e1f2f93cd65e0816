package device

import (
	"errors"

	"github.com/sdss/fliswarm/pkg/linesession"
)

var (
	// ErrNotConnected is returned (wrapped, naming the camera) by Send when
	// there is no connection to the camera actor.
	ErrNotConnected = errors.New("not connected")
	// ErrDisconnected is returned (wrapped, naming the camera and the
	// command) by Send when the connection dropped while the command ran.
	ErrDisconnected = errors.New("connection lost")
	// ErrTimeout is returned (wrapped) by Send when the per-command timeout
	// fired before the camera finished the command.
	ErrTimeout = linesession.ErrTimeout
	// ErrAlreadyRunning is returned by Run when another Run of the same
	// Client is active.
	ErrAlreadyRunning = errors.New("device: Run already active")
	// ErrWrongSender is the reason a connection is refused when the actor
	// answering on the camera's port is not the node's camera (the sender
	// of its replies is not the client's name).
	ErrWrongSender = errors.New("the actor answering is not this node's camera")
	// ErrNotAnswering is the reason a connection is dropped when the
	// camera did not answer a liveness ping in time.
	ErrNotAnswering = errors.New("camera not answering")

	// errDisconnectRequested is the cause of a drop asked for by Disconnect.
	errDisconnectRequested = errors.New("disconnect requested")
	// errPaused is the cause of a drop asked for by Pause.
	errPaused = errors.New("connection paused")
)
