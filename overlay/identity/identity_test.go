package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixedKey returns a key pair from a fixed secret, for vectors.
func fixedKey(t *testing.T) *KeyPair {
	t.Helper()
	sk := append([]byte("LibNaCLSK:"), bytes.Repeat([]byte{7}, 32)...)
	sk = append(sk, bytes.Repeat([]byte{9}, 32)...)
	kp, err := ParseSecretKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestPublicKeyForm(t *testing.T) {
	kp := fixedKey(t)
	pk := kp.Public()
	if !bytes.HasPrefix(pk[:], []byte("LibNaCLPK:")) {
		t.Fatalf("public key %x lacks the LibNaCLPK: prefix", pk[:12])
	}
	got, err := ParsePublicKey(pk[:])
	if err != nil || got != pk {
		t.Fatalf("ParsePublicKey round trip: %v, equal=%v", err, got == pk)
	}
	if !bytes.Equal(kp.SecretKey()[42:], kp.Signer().Seed()) {
		t.Fatal("secret key does not carry the Ed25519 seed at bytes 42..74")
	}
	kp2, err := ParseSecretKey(kp.SecretKey())
	if err != nil || kp2.Public() != pk {
		t.Fatalf("secret key round trip: %v", err)
	}
	// Golden values; the public key and mid were checked with an
	// independent X25519/Ed25519/SHA-1 implementation.
	const (
		wantPK     = "4c69624e61434c504b3a13be4feaeaf204c7fd3358fc9c00721881d174278128227ec674f37f7fe97b6dfd1724385aa0c75b64fb78cd602fa1d991fdebf76b13c58ed702eac835e9f618"
		wantMid    = "a062f54ecaaa1575060497e84d499cb7cafa82d2"
		wantPeerID = "816b4de170d880e06475459d642cd92729de9552886bf1010b72d7d2c0a694d2"
	)
	if got := hex.EncodeToString(pk[:]); got != wantPK {
		t.Fatalf("public key = %s, want %s", got, wantPK)
	}
	if mid := pk.Mid(); hex.EncodeToString(mid[:]) != wantMid {
		t.Fatalf("mid = %x, want %s", mid, wantMid)
	}
	if id := pk.PeerID().String(); id != wantPeerID {
		t.Fatalf("PeerID = %s, want %s", id, wantPeerID)
	}
	if len(pk.PeerID().Short()) != 12 {
		t.Fatalf("Short() = %q, want 12 characters", pk.PeerID().Short())
	}
	id, err := ParsePeerID(pk.PeerID().String())
	if err != nil || id != pk.PeerID() {
		t.Fatalf("ParsePeerID round trip: %v", err)
	}
}

func TestSignVerify(t *testing.T) {
	kp, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello shoal")
	sig := kp.Sign(msg)
	if !kp.Public().Verify(msg, sig) {
		t.Fatal("a fresh signature does not verify")
	}
	sig[3] ^= 1
	if kp.Public().Verify(msg, sig) {
		t.Fatal("a flipped signature verifies")
	}
	if kp.Public().Verify(msg, sig[:10]) {
		t.Fatal("a short signature verifies")
	}
}

func TestSharedSecretAgrees(t *testing.T) {
	a, _ := Generate(nil)
	b, _ := Generate(nil)
	s1, err1 := a.SharedSecret(b.Public())
	s2, err2 := b.SharedSecret(a.Public())
	if err1 != nil || err2 != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("shared secrets differ: %x vs %x (%v, %v)", s1, s2, err1, err2)
	}
}

func TestParseRejects(t *testing.T) {
	kp := fixedKey(t)
	pk := kp.Public()
	tests := []struct {
		name string
		in   []byte
		want error
		say  string
	}{
		{"empty", nil, ErrKeyKind, "prefix"},
		{"short", pk[:40], ErrKeyLength, "40 bytes"},
		{"long", append(pk[:], 0), ErrKeyLength, "75 bytes"},
		{"der", []byte{0x30, 0x40, 0x30, 0x10}, ErrKeyKind, "DER"},
		{"secret as public", kp.SecretKey(), ErrKeyKind, "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePublicKey(tc.in)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("ParsePublicKey(%s) = %v, want %v mentioning %q", tc.name, err, tc.want, tc.say)
			}
		})
	}
	if _, err := ParsePeerID("abc"); err == nil {
		t.Fatal("ParsePeerID accepted 3 characters")
	}
	if _, err := ParsePeerID(strings.Repeat("zz", 32)); err == nil {
		t.Fatal("ParsePeerID accepted non-hex")
	}
}

func TestMidIsSHA1(t *testing.T) {
	// sha1("LibNaCLPK:" + 64 zero bytes), computed independently.
	var pk PublicKey
	copy(pk[:], "LibNaCLPK:")
	mid := pk.Mid()
	if got := hex.EncodeToString(mid[:]); got != "38c568bfe810e400b86431afd77998da8c6591d4" {
		t.Fatalf("mid = %s, want sha1 of the key", got)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "key")
	kp, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	kp2, created, err := LoadOrCreate(path)
	if err != nil || created || kp2.Public() != kp.Public() {
		t.Fatalf("second LoadOrCreate: created=%v err=%v same=%v", created, err, kp2 != nil && kp2.Public() == kp.Public())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreate(path)
	if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: err = %v, want ErrKeyFileMode with a chmod hint", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad"), []byte("LibNaCLSK:short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "bad")); !errors.Is(err, ErrKeyLength) {
		t.Fatalf("truncated key file: err = %v, want ErrKeyLength", err)
	}
}
