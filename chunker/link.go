package chunker

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// LinkScheme starts every link.
const LinkScheme = "shoal:"

// Link limits, checked by ParseLink and Link.Validate.
const (
	MaxLinkLen   = 8192 // bytes of text
	MaxLinkPeers = 32   // peer hints
)

// Link is what a user shares: a content ID plus optional hints.
//
// Text form:
//
//	shoal:<id>[?name=<name>][&peer=[<peerid>@]<host>:<port>]...
//
// <id> is the ContentID text form. Values are percent-encoded (RFC 3986;
// "+" is a literal plus). The name is a suggestion for the output name and
// follows the manifest's name rules. A peer hint is a host:port (IPv6 hosts in
// brackets), optionally preceded by the peer's PeerID as 64 hex digits and
// "@". Unknown parameters are ignored so later versions can add some; String
// writes name first, then peers in order.
type Link struct {
	ID    ContentID
	Name  string     // optional
	Peers []PeerHint // optional, at most MaxLinkPeers
}

// PeerHint is an address where a peer serving the content may be reached.
type PeerHint struct {
	PeerID string // "" or 64 lower-case hex digits; opaque to this package
	Addr   string // host:port
}

// String returns the hint in link form: [peerid@]host:port.
func (p PeerHint) String() string {
	if p.PeerID == "" {
		return p.Addr
	}
	return p.PeerID + "@" + p.Addr
}

// ParsePeerHint parses [peerid@]host:port.
func ParsePeerHint(s string) (PeerHint, error) {
	var p PeerHint
	if i := strings.IndexByte(s, '@'); i >= 0 {
		p.PeerID, s = strings.ToLower(s[:i]), s[i+1:]
		if p.PeerID != "" && len(p.PeerID) != 64 {
			return PeerHint{}, fmt.Errorf("peer id has %d characters, want 64 hex digits", len(p.PeerID))
		}
		if _, err := hex.DecodeString(p.PeerID); err != nil {
			return PeerHint{}, fmt.Errorf("peer id is not hex")
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return PeerHint{}, fmt.Errorf("peer address %q: want host:port", s)
	}
	if host == "" {
		return PeerHint{}, fmt.Errorf("peer address %q: empty host", s)
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '_') {
			return PeerHint{}, fmt.Errorf("peer address %q: bad character %q in host", s, c)
		}
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn < 1 || pn > 65535 || strconv.Itoa(pn) != port {
		return PeerHint{}, fmt.Errorf("peer address %q: port must be 1..65535", s)
	}
	p.Addr = net.JoinHostPort(host, port)
	return p, nil
}

// String returns the text form of the link.
func (l Link) String() string {
	var b strings.Builder
	b.WriteString(LinkScheme)
	b.WriteString(l.ID.String())
	sep := byte('?')
	if l.Name != "" {
		b.WriteByte(sep)
		b.WriteString("name=")
		b.WriteString(linkEscape(l.Name, false))
		sep = '&'
	}
	for _, p := range l.Peers {
		b.WriteByte(sep)
		b.WriteString("peer=")
		b.WriteString(linkEscape(p.String(), true))
		sep = '&'
	}
	return b.String()
}

// ParseLink parses the text form of a link. Errors wrap ErrBadLink and say
// which part is wrong.
func ParseLink(s string) (Link, error) {
	var l Link
	if len(s) > MaxLinkLen {
		return l, fmt.Errorf("%w: %d bytes, limit %d", ErrBadLink, len(s), MaxLinkLen)
	}
	if len(s) < len(LinkScheme) || !strings.EqualFold(s[:len(LinkScheme)], LinkScheme) {
		return l, fmt.Errorf("%w: must start with %q", ErrBadLink, LinkScheme)
	}
	s = s[len(LinkScheme):]
	idText, query, _ := strings.Cut(s, "?")
	id, err := ParseID(idText)
	if err != nil {
		return l, fmt.Errorf("%w: %w", ErrBadLink, err)
	}
	l.ID = id
	if query == "" {
		return l, nil
	}
	seenName := false
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		val, err := url.PathUnescape(v)
		if err != nil {
			return Link{}, fmt.Errorf("%w: parameter %q: bad percent-encoding", ErrBadLink, k)
		}
		switch k {
		case "name":
			if seenName {
				return Link{}, fmt.Errorf("%w: name given twice", ErrBadLink)
			}
			seenName = true
			if err := validName(val); err != nil {
				return Link{}, fmt.Errorf("%w: name: %w", ErrBadLink, err)
			}
			l.Name = val
		case "peer":
			if len(l.Peers) == MaxLinkPeers {
				return Link{}, fmt.Errorf("%w: more than %d peers", ErrBadLink, MaxLinkPeers)
			}
			p, err := ParsePeerHint(val)
			if err != nil {
				return Link{}, fmt.Errorf("%w: peer %d: %w", ErrBadLink, len(l.Peers), err)
			}
			l.Peers = append(l.Peers, p)
		}
	}
	return l, nil
}

// MarshalText implements encoding.TextMarshaler.
func (l Link) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (l *Link) UnmarshalText(b []byte) error {
	v, err := ParseLink(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// linkEscape percent-encodes everything but RFC 3986 unreserved characters,
// and for peers also ":@[]" so addresses stay readable.
func linkEscape(s string, peer bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case peer && (c == ':' || c == '@' || c == '[' || c == ']'):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}
