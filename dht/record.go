package dht

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

const (
	// MaxRecordAddrs is the most addresses a provider record carries.
	MaxRecordAddrs = 4
	recordFixed    = 32 + identity.PublicKeySize + 8 + 1 + identity.SignatureSize
	maxRecordSize  = recordFixed + MaxRecordAddrs*maxAddrSize
	recordDomain   = "shoal-dht-provider-v1"
)

// Record is a signed provider record: the peer whose public key is Key
// serves Content at Addrs until Expires (Unix seconds).
type Record struct {
	Content Key
	Key     identity.PublicKey
	Expires int64
	Addrs   []netip.AddrPort
	Sig     [identity.SignatureSize]byte
}

// Signer signs provider records. *identity.KeyPair satisfies it.
type Signer interface {
	Public() identity.PublicKey
	Sign(msg []byte) []byte
}

var _ Signer = (*identity.KeyPair)(nil)

// Provider is a verified provider record as a lookup returns it.
type Provider struct {
	ID      identity.PeerID
	Key     identity.PublicKey
	Addrs   []netip.AddrPort
	Expires time.Time
}

func (r *Record) provider() Provider {
	return Provider{ID: r.Key.PeerID(), Key: r.Key, Addrs: r.Addrs, Expires: time.Unix(r.Expires, 0)}
}

func (r *Record) size() int {
	n := recordFixed
	for _, a := range r.Addrs {
		n += addrSize(a)
	}
	return n
}

// appendUnsigned appends every record byte before the signature.
func (r *Record) appendUnsigned(b []byte) []byte {
	b = append(b, r.Content[:]...)
	b = append(b, r.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Expires))
	b = append(b, byte(len(r.Addrs)))
	for _, a := range r.Addrs {
		b = appendAddr(b, a)
	}
	return b
}

// Append appends the encoding of r.
func (r *Record) Append(b []byte) []byte {
	b = r.appendUnsigned(b)
	return append(b, r.Sig[:]...)
}

func (r *Record) signedBytes() []byte {
	b := make([]byte, 0, len(recordDomain)+maxRecordSize)
	b = append(b, recordDomain...)
	return r.appendUnsigned(b)
}

// sign fills r.Key and r.Sig from s.
func (r *Record) sign(s Signer) {
	r.Key = s.Public()
	copy(r.Sig[:], s.Sign(r.signedBytes()))
}

// Verify reports whether r carries a valid signature by r.Key.
func (r *Record) Verify() bool {
	return r.Key.Verify(r.signedBytes(), r.Sig[:])
}

// readRecord decodes one record from the front of b. It checks the layout
// and the key form, not the signature.
func readRecord(b []byte) (Record, []byte, error) {
	var r Record
	if len(b) < recordFixed {
		return r, nil, fmt.Errorf("%w: record: %d bytes, want at least %d", ErrMalformed, len(b), recordFixed)
	}
	r.Content = Key(b[:32])
	pk, err := identity.ParsePublicKey(b[32 : 32+identity.PublicKeySize])
	if err != nil {
		return r, nil, fmt.Errorf("%w: record key: %v", ErrMalformed, err)
	}
	r.Key = pk
	b = b[32+identity.PublicKeySize:]
	exp := binary.BigEndian.Uint64(b)
	if exp > 1<<62 {
		return r, nil, fmt.Errorf("%w: record expiry %d out of range", ErrMalformed, exp)
	}
	r.Expires = int64(exp)
	n := int(b[8])
	b = b[9:]
	if n > MaxRecordAddrs {
		return r, nil, fmt.Errorf("%w: record with %d addresses, at most %d", ErrMalformed, n, MaxRecordAddrs)
	}
	if n > 0 {
		r.Addrs = make([]netip.AddrPort, n)
	}
	for i := range r.Addrs {
		r.Addrs[i], b, err = readAddr(b)
		if err != nil {
			return r, nil, fmt.Errorf("record address %d: %w", i, err)
		}
	}
	if len(b) < identity.SignatureSize {
		return r, nil, fmt.Errorf("%w: record signature: truncated", ErrMalformed)
	}
	copy(r.Sig[:], b)
	return r, b[identity.SignatureSize:], nil
}

// DecodeRecord decodes exactly one record.
func DecodeRecord(b []byte) (Record, error) {
	r, rest, err := readRecord(b)
	if err != nil {
		return r, err
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%w: %d trailing bytes after record", ErrMalformed, len(rest))
	}
	return r, nil
}
