package overlay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/shoal-p2p/shoal/overlay/identity"
)

func mustKey(t testing.TB) *identity.KeyPair {
	t.Helper()
	kp, err := identity.Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// makeCert signs a certificate for pub with priv, carrying uris.
func makeCert(t testing.TB, pub, priv any, uris ...string) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func keyURI(pk identity.PublicKey) string { return keyURIScheme + ":" + hex.EncodeToString(pk[:]) }

func TestPeerKey(t *testing.T) {
	kp, other := mustKey(t), mustKey(t)
	good, err := newCertificate(kp)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A key whose Ed25519 half is kp's but whose X25519 half is other's.
	mixed := kp.Public()
	copy(mixed[10:42], other.Public().X25519())
	edPub := kp.Signer().Public()

	tests := []struct {
		name    string
		certs   [][]byte
		wantErr bool
	}{
		{"node certificate", good.Certificate, false},
		{"hand-made equivalent", [][]byte{makeCert(t, edPub, kp.Signer(), keyURI(kp.Public()))}, false},
		{"mixed halves still bound by signature", [][]byte{makeCert(t, edPub, kp.Signer(), keyURI(mixed))}, false},
		{"no certificate", nil, true},
		{"two certificates", [][]byte{good.Certificate[0], good.Certificate[0]}, true},
		{"not DER", [][]byte{[]byte("hello")}, true},
		{"ECDSA key", [][]byte{makeCert(t, &ecKey.PublicKey, ecKey, keyURI(kp.Public()))}, true},
		{"no key URI", [][]byte{makeCert(t, edPub, kp.Signer())}, true},
		{"two key URIs", [][]byte{makeCert(t, edPub, kp.Signer(), keyURI(kp.Public()), keyURI(kp.Public()))}, true},
		{"another node's key", [][]byte{makeCert(t, edPub, kp.Signer(), keyURI(other.Public()))}, true},
		{"signed by another key", [][]byte{makeCert(t, edPub, other.Signer(), keyURI(kp.Public()))}, true},
		{"key URI not hex", [][]byte{makeCert(t, edPub, kp.Signer(), keyURIScheme+":zz")}, true},
		{"key URI short", [][]byte{makeCert(t, edPub, kp.Signer(), keyURIScheme+":"+hex.EncodeToString(kp.Public().Ed25519()))}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pk, err := peerKey(tt.certs)
			if tt.wantErr {
				if !errors.Is(err, ErrBadCert) {
					t.Errorf("peerKey: %v, want ErrBadCert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("peerKey: %v", err)
			}
			if !bytes.Equal(pk.Ed25519(), kp.Public().Ed25519()) {
				t.Errorf("peerKey returned another Ed25519 key")
			}
		})
	}
	if pk, _ := peerKey(good.Certificate); pk.PeerID() != kp.PeerID() {
		t.Errorf("PeerID from certificate %s, want %s", pk.PeerID().Short(), kp.PeerID().Short())
	}
}

// FuzzPeerKey feeds arbitrary bytes as a certificate. peerKey must not
// panic, and any key it accepts must be bound to the certificate's key.
func FuzzPeerKey(f *testing.F) {
	kp := mustKey(f)
	good, err := newCertificate(kp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Certificate[0])
	f.Add(makeCert(f, kp.Signer().Public(), kp.Signer()))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		pk, err := peerKey([][]byte{der})
		if err != nil {
			if !errors.Is(err, ErrBadCert) {
				t.Fatalf("error %v does not wrap ErrBadCert", err)
			}
			return
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("accepted a certificate that does not parse: %v", err)
		}
		if !bytes.Equal(pk.Ed25519(), cert.PublicKey.(ed25519.PublicKey)) {
			t.Fatalf("accepted key differs from the certificate's")
		}
		again, err := peerKey([][]byte{der})
		if err != nil || again != pk {
			t.Fatalf("second decode differs: %v", err)
		}
	})
}
