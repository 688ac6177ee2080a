package seed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/shoal-p2p/shoal/chunker"
)

// Errors a caller may want to tell apart. Each has a stable code (see Code)
// that crosses the control API, so that errors.Is gives the same answer on
// a Client as on the Node. Their texts are bare: the layer that returns one
// wraps it once with what its caller does not know.
var (
	ErrBadLink      = errors.New("bad link")
	ErrNotFound     = errors.New("not found")
	ErrNoPeers      = errors.New("no peer served the content")
	ErrDiskFull     = errors.New("the disk is full")
	ErrExists       = errors.New("already exists")
	ErrBusy         = errors.New("busy")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrBadRequest   = errors.New("bad request")
	ErrInterrupted  = errors.New("interrupted")
	ErrClosed       = errors.New("node closed")
	ErrDataDirBusy  = errors.New("data folder in use")
	ErrNoNode       = errors.New("no running node")
)

// ErrNotInLibrary is ErrNotFound, under the name older callers use.
var ErrNotInLibrary = ErrNotFound

// Error codes, as they cross the control API in
// {"error":{"code":...,"message":...}}. docs/api.md lists them.
const (
	CodeBadLink      = "bad_link"
	CodeNotFound     = "not_found"
	CodeNoPeers      = "no_peers"
	CodeDiskFull     = "disk_full"
	CodeExists       = "exists"
	CodeBusy         = "busy"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeBadRequest   = "bad_request"
	CodeInterrupted  = "interrupted"
	CodeClosed       = "closed"
	CodeNoNode       = "no_node"
	CodeInternal     = "internal"
)

var codes = []struct {
	code string
	err  error
}{
	{CodeBadLink, ErrBadLink},
	{CodeNotFound, ErrNotFound},
	{CodeNoPeers, ErrNoPeers},
	{CodeDiskFull, ErrDiskFull},
	{CodeExists, ErrExists},
	{CodeBusy, ErrBusy},
	{CodeBusy, ErrDataDirBusy},
	{CodeUnauthorized, ErrUnauthorized},
	{CodeForbidden, ErrForbidden},
	{CodeBadRequest, ErrBadRequest},
	{CodeInterrupted, ErrInterrupted},
	{CodeClosed, ErrClosed},
	{CodeNoNode, ErrNoNode},
}

// Code returns the stable code of err: the code of the first sentinel it
// wraps, else one derived from well-known causes (a full disk, a missing
// or existing file, a bad link or ID from chunker, cancellation), else
// "internal". Code(nil) is "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return CodeDiskFull
	case errors.Is(err, chunker.ErrBadLink), errors.Is(err, chunker.ErrBadID):
		return CodeBadLink
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, chunker.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, fs.ErrExist):
		return CodeExists
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return CodeInterrupted
	}
	return CodeInternal
}

// APIError is an error as it crossed the control API: its code and its
// message. errors.Is(e, ErrX) holds for the sentinel of its code, so callers
// test a Client's errors as they test a Node's.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Message }

// Is reports whether target is the sentinel of e's code.
func (e *APIError) Is(target error) bool {
	for _, c := range codes {
		if c.err == target {
			return c.code == e.Code
		}
	}
	return false
}

// toAPIError describes err for the wire.
func toAPIError(err error) *APIError {
	return &APIError{Code: Code(err), Message: err.Error()}
}

// codedError is a message that says it all, wrapping a sentinel for
// errors.Is and Code without repeating the sentinel's words.
type codedError struct {
	sentinel error
	msg      string
}

func (e *codedError) Error() string { return e.msg }
func (e *codedError) Unwrap() error { return e.sentinel }

// Errorf formats a message that wraps sentinel silently; %w in format
// wraps further causes as fmt.Errorf does.
func Errorf(sentinel error, format string, args ...any) error {
	return &codedError{sentinel: sentinel, msg: fmt.Errorf(format, args...).Error()}
}
