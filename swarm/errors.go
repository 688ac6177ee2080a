package swarm

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers tell "this peer sent bad data" (ErrBadData,
// ErrProtocol: penalise it) from "this peer went away or refused"
// (a *StatusError or a transport error: retry elsewhere) with errors.Is/As.
var (
	// ErrProtocol: the peer sent bytes that break the wire format.
	ErrProtocol = errors.New("swarm: protocol violation")
	// ErrVersion: the peer speaks another protocol version.
	ErrVersion = errors.New("swarm: unsupported protocol version")
	// ErrBadData: the peer sent data that failed verification (a chunk that
	// does not match its leaf, a manifest that does not match the content
	// ID, a leaf layer that does not match the root).
	ErrBadData = errors.New("swarm: peer sent bad data")
	// ErrClosed: the object was closed.
	ErrClosed = errors.New("swarm: closed")
)

// StatusError is a refusal from the remote side: a response status other
// than StatusOK and the reason the peer gave.
type StatusError struct {
	Status Status
	Reason string
}

func (e *StatusError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("swarm: peer answered %s", e.Status)
	}
	return fmt.Sprintf("swarm: peer answered %s: %s", e.Status, e.Reason)
}

// IsStatus reports whether err is a *StatusError with status s.
func IsStatus(err error, s Status) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == s
}
