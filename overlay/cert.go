package overlay

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

// ALPN is the TLS application protocol shoal speaks over QUIC: the name and
// the version of the stream protocol. A peer offering anything else fails
// the handshake.
const ALPN = "shoal/1"

// keyURIScheme is the scheme of the URI SAN that carries the full 74-byte
// public key (both halves) in hex.
const keyURIScheme = "shoal-pk"

// newCertificate makes the node's self-signed TLS certificate from its
// Ed25519 key. The certificate carries the node's whole public key as a URI
// SAN "shoal-pk:<148 hex digits>", signed along with the rest, which binds
// the X25519 half to the Ed25519 key that signs the handshake.
func newCertificate(kp *identity.KeyPair) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("overlay: certificate serial: %w", err)
	}
	pk := kp.Public()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "shoal " + kp.PeerID().Short()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{{Scheme: keyURIScheme, Opaque: hex.EncodeToString(pk[:])}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, kp.Signer().Public(), kp.Signer())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("overlay: creating certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: kp.Signer()}, nil
}

// peerKey checks a peer's certificate chain and returns the public key it
// carries. The chain must be one self-signed Ed25519 certificate whose
// shoal-pk URI holds a key whose Ed25519 half is the certificate's key.
// Validity dates are not checked: peers' clocks are not trusted, and the
// TLS handshake already proves possession of the key.
func peerKey(rawCerts [][]byte) (identity.PublicKey, error) {
	var zero identity.PublicKey
	if len(rawCerts) != 1 {
		return zero, fmt.Errorf("%w: %d certificates, want 1", ErrBadCert, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return zero, fmt.Errorf("%w: %v", ErrBadCert, err)
	}
	edKey, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return zero, fmt.Errorf("%w: %v key, want Ed25519", ErrBadCert, cert.PublicKeyAlgorithm)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return zero, fmt.Errorf("%w: not self-signed: %v", ErrBadCert, err)
	}
	var found []string
	for _, u := range cert.URIs {
		if u.Scheme == keyURIScheme {
			found = append(found, u.Opaque)
		}
	}
	if len(found) != 1 {
		return zero, fmt.Errorf("%w: %d %s URIs, want 1", ErrBadCert, len(found), keyURIScheme)
	}
	raw, err := hex.DecodeString(strings.ToLower(found[0]))
	if err != nil {
		return zero, fmt.Errorf("%w: key URI not hex: %v", ErrBadCert, err)
	}
	pk, err := identity.ParsePublicKey(raw)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", ErrBadCert, err)
	}
	if !bytes.Equal(pk.Ed25519(), edKey) {
		return zero, fmt.Errorf("%w: key URI's Ed25519 half differs from the certificate key", ErrBadCert)
	}
	return pk, nil
}

// stateKey returns the public key of the peer's certificate after a
// handshake that verified it.
func stateKey(st tls.ConnectionState) (identity.PublicKey, error) {
	raw := make([][]byte, 0, len(st.PeerCertificates))
	for _, c := range st.PeerCertificates {
		raw = append(raw, c.Raw)
	}
	return peerKey(raw)
}

// expectPeer is a client's VerifyPeerCertificate: the chain must pass
// peerKey and, unless peer is zero, carry peer's key (else ErrWrongPeer).
func expectPeer(peer identity.PeerID) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		pk, err := peerKey(raw)
		if err != nil {
			return err
		}
		if !peer.IsZero() && pk.PeerID() != peer {
			return fmt.Errorf("%w: expected %s, got %s", ErrWrongPeer, peer.Short(), pk.PeerID().Short())
		}
		return nil
	}
}

// tlsConfigs returns the server and client TLS configurations. Both demand
// a certificate from the other side and check it with peerKey; the client
// additionally checks the expected PeerID per dial (see dial.go).
func tlsConfigs(cert tls.Certificate) (server, client *tls.Config) {
	verify := func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
		_, err := peerKey(rawCerts)
		return err
	}
	server = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert,
		VerifyPeerCertificate:  verify,
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true, // every handshake sees the certificate
	}
	client = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// No CA: the certificate is checked by VerifyPeerCertificate.
		InsecureSkipVerify:    true,
		VerifyPeerCertificate: verify,
		NextProtos:            []string{ALPN},
		ServerName:            "shoal",
	}
	return server, client
}
