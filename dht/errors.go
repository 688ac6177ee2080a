package dht

import "errors"

// Errors. ErrMalformed and its kin mean the peer sent bad data (count it,
// penalise); ErrTimeout and ErrNoContacts mean peers went away (retry).
var (
	ErrMalformed  = errors.New("dht: malformed message")
	ErrTooLarge   = errors.New("dht: message too large")
	ErrVersion    = errors.New("dht: unknown wire version")
	ErrBadRecord  = errors.New("dht: bad provider record")
	ErrTimeout    = errors.New("dht: request timed out")
	ErrNoContacts = errors.New("dht: no reachable contacts")
	ErrNotStored  = errors.New("dht: no node stored the record")
	ErrClosed     = errors.New("dht: node closed")
	ErrCanceled   = errors.New("dht: lookup canceled")
)
