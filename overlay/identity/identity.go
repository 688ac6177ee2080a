package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/curve25519"
)

const (
	// PublicKeySize is the length of a public key in LibNaCLPK form.
	PublicKeySize = 74
	// SecretKeySize is the length of a key file in LibNaCLSK form.
	SecretKeySize = 74
	// SignatureSize is the length of an Ed25519 signature.
	SignatureSize = ed25519.SignatureSize

	pkPrefix = "LibNaCLPK:"
	skPrefix = "LibNaCLSK:"
)

// Errors returned when decoding keys.
var (
	ErrKeyLength = errors.New("identity: wrong key length")
	ErrKeyKind   = errors.New("identity: unsupported key kind")
)

// PublicKey is a peer's public key in IPv8's 74-byte LibNaCLPK form.
// The zero value is not a valid key.
type PublicKey [PublicKeySize]byte

// ParsePublicKey checks b and returns it as a PublicKey. It rejects other
// key kinds (such as DER-encoded ECDSA keys) with a reason.
func ParsePublicKey(b []byte) (PublicKey, error) {
	var pk PublicKey
	if !bytes.HasPrefix(b, []byte(pkPrefix)) {
		if len(b) > 0 && b[0] == 0x30 {
			return pk, fmt.Errorf("%w: a DER-encoded (legacy ECDSA) key; only curve25519 keys are accepted", ErrKeyKind)
		}
		return pk, fmt.Errorf("%w: missing %q prefix", ErrKeyKind, pkPrefix)
	}
	if len(b) != PublicKeySize {
		return pk, fmt.Errorf("%w: %d bytes, want %d", ErrKeyLength, len(b), PublicKeySize)
	}
	copy(pk[:], b)
	return pk, nil
}

// X25519 returns the key-agreement half.
func (pk PublicKey) X25519() []byte { return pk[10:42] }

// Ed25519 returns the signature half.
func (pk PublicKey) Ed25519() ed25519.PublicKey { return ed25519.PublicKey(pk[42:74]) }

// PeerID returns BLAKE3-256 of the key.
func (pk PublicKey) PeerID() PeerID { return PeerID(blake3.Sum256(pk[:])) }

// Mid returns IPv8's peer identifier, SHA-1 of the key.
func (pk PublicKey) Mid() [20]byte { return sha1.Sum(pk[:]) }

// Verify reports whether sig is pk's Ed25519 signature of msg.
func (pk PublicKey) Verify(msg, sig []byte) bool {
	return len(sig) == SignatureSize && ed25519.Verify(pk.Ed25519(), msg, sig)
}

// PeerID names a peer: BLAKE3-256 of its public key.
type PeerID [32]byte

// String returns the 64 hex digits.
func (id PeerID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for logs and humans.
func (id PeerID) Short() string { return hex.EncodeToString(id[:6]) }

// IsZero reports whether id is the zero PeerID.
func (id PeerID) IsZero() bool { return id == PeerID{} }

// ParsePeerID parses the 64 hex digit form.
func ParsePeerID(s string) (PeerID, error) {
	var id PeerID
	if len(s) != 64 {
		return id, fmt.Errorf("identity: peer ID %q: %d characters, want 64 hex digits", s, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("identity: peer ID %q: not hex: %v", s, err)
	}
	return id, nil
}

// KeyPair is a node's private identity. It is immutable and safe for
// concurrent use.
type KeyPair struct {
	xSecret [32]byte
	signer  ed25519.PrivateKey
	public  PublicKey
}

// Generate makes a new key pair from r (crypto/rand when r is nil).
func Generate(r io.Reader) (*KeyPair, error) {
	if r == nil {
		r = rand.Reader
	}
	var sk [SecretKeySize]byte
	copy(sk[:], skPrefix)
	if _, err := io.ReadFull(r, sk[10:]); err != nil {
		return nil, fmt.Errorf("identity: generating key: %w", err)
	}
	return ParseSecretKey(sk[:])
}

// ParseSecretKey decodes a key in LibNaCLSK form.
func ParseSecretKey(b []byte) (*KeyPair, error) {
	if !bytes.HasPrefix(b, []byte(skPrefix)) {
		return nil, fmt.Errorf("%w: missing %q prefix", ErrKeyKind, skPrefix)
	}
	if len(b) != SecretKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKeyLength, len(b), SecretKeySize)
	}
	kp := &KeyPair{signer: ed25519.NewKeyFromSeed(b[42:74])}
	copy(kp.xSecret[:], b[10:42])
	xPub, err := curve25519.X25519(kp.xSecret[:], curve25519.Basepoint)
	if err != nil {
		return nil, fmt.Errorf("identity: x25519 key: %w", err)
	}
	copy(kp.public[:], pkPrefix)
	copy(kp.public[10:42], xPub)
	copy(kp.public[42:], kp.signer.Public().(ed25519.PublicKey))
	return kp, nil
}

// SecretKey returns the key in LibNaCLSK form, as stored in key files.
func (kp *KeyPair) SecretKey() []byte {
	b := make([]byte, 0, SecretKeySize)
	b = append(b, skPrefix...)
	b = append(b, kp.xSecret[:]...)
	return append(b, kp.signer.Seed()...)
}

// Public returns the public key.
func (kp *KeyPair) Public() PublicKey { return kp.public }

// PeerID returns the PeerID of the public key.
func (kp *KeyPair) PeerID() PeerID { return kp.public.PeerID() }

// Signer returns the Ed25519 private key, for TLS certificates.
// Callers must not modify it.
func (kp *KeyPair) Signer() ed25519.PrivateKey { return kp.signer }

// Sign returns the Ed25519 signature of msg.
func (kp *KeyPair) Sign(msg []byte) []byte { return ed25519.Sign(kp.signer, msg) }

// AppendSign appends the Ed25519 signature of msg to b.
func (kp *KeyPair) AppendSign(b, msg []byte) []byte {
	return append(b, ed25519.Sign(kp.signer, msg)...)
}

// SharedSecret returns the X25519 shared secret with peer's key-agreement
// half.
func (kp *KeyPair) SharedSecret(peer PublicKey) ([]byte, error) {
	s, err := curve25519.X25519(kp.xSecret[:], peer.X25519())
	if err != nil {
		return nil, fmt.Errorf("identity: x25519 agreement: %w", err)
	}
	return s, nil
}
