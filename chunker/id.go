package chunker

import (
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/zeebo/blake3"
)

// ContentID names a published item: the BLAKE3-256 hash of its manifest
// bytes. It is a plain 32-byte value; other packages (the DHT) may use it as
// a key without importing this package.
type ContentID [32]byte

// IDPrefix starts every content ID in text form. "sh" for shoal, "1" for the
// first ID version (BLAKE3-256 of a version-1 manifest).
const IDPrefix = "sh1"

// idTextLen is the length of the text form: prefix plus 52 base32 digits.
const idTextLen = len(IDPrefix) + 52

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// IDOf returns the content ID of encoded manifest bytes.
func IDOf(manifest []byte) ContentID { return ContentID(blake3.Sum256(manifest)) }

// String returns the text form: "sh1" followed by the 32 bytes in RFC 4648
// base32, lower case, without padding (55 characters in all).
func (id ContentID) String() string {
	return IDPrefix + idEncoding.EncodeToString(id[:])
}

// MarshalText implements encoding.TextMarshaler.
func (id ContentID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ContentID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses the text form of a content ID. Upper and lower case are
// both accepted.
func ParseID(s string) (ContentID, error) {
	var id ContentID
	if len(s) != idTextLen {
		return id, fmt.Errorf("%w: length %d, want %d", ErrBadID, len(s), idTextLen)
	}
	s = strings.ToLower(s)
	if !strings.HasPrefix(s, IDPrefix) {
		return id, fmt.Errorf("%w: prefix %q, want %q", ErrBadID, s[:len(IDPrefix)], IDPrefix)
	}
	n, err := idEncoding.Decode(id[:], []byte(s[len(IDPrefix):]))
	if err != nil || n != len(id) {
		return ContentID{}, fmt.Errorf("%w: invalid base32 digits", ErrBadID)
	}
	// 52 digits carry 260 bits; the last 4 must be zero so that one ID has
	// exactly one text form.
	if idEncoding.EncodeToString(id[:]) != s[len(IDPrefix):] {
		return ContentID{}, fmt.Errorf("%w: non-canonical last digit", ErrBadID)
	}
	return id, nil
}
