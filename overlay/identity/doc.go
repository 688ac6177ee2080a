// Package identity holds a node's long-term keys and the names derived from
// them.
//
// A node has two independent key pairs, as in IPv8's "curve25519" keys: an
// Ed25519 pair for signatures and an X25519 pair for key agreement. They are
// stored together and named together.
//
// Byte layouts (all fixed size):
//
//	public key (74 bytes, IPv8's LibNaCLPK form)
//	+------------------+------------------+------------------+
//	| "LibNaCLPK:" (10)| X25519 public 32 | Ed25519 public 32|
//	+------------------+------------------+------------------+
//
//	key file (74 bytes, IPv8's LibNaCLSK form, mode 0600)
//	+------------------+------------------+------------------+
//	| "LibNaCLSK:" (10)| X25519 secret 32 | Ed25519 seed 32  |
//	+------------------+------------------+------------------+
//
// Names derived from the 74-byte public key:
//
//   - PeerID: BLAKE3-256 of the public key. shoal's name for a peer in the
//     DHT, the swarm and on the command line. Printed as 64 lowercase hex
//     digits; Short gives the first 12 for humans.
//   - Mid: SHA-1 of the public key, IPv8's peer identifier, kept for
//     compatibility with IPv8 peers.
//
// Keys of other kinds (IPv8's legacy "LibNaCLPK" prefixes aside, DER-encoded
// binary-curve ECDSA keys) are rejected with a reason.
//
// This package does no I/O except in LoadOrCreate, which reads or writes the
// key file. A key file readable by group or others is refused.
package identity
