// Package adversary is a malicious peer for tests: real overlay nodes on
// 127.0.0.1 that speak shoal's protocols badly on purpose, so that every
// attack a hostile peer can make stays tested against the real code
// through real QUIC sockets. It is test support only: no production
// package may import it (deps_test.go).
//
// CorruptSource (source.go) lies about chunk bytes. Swarm attacks live in
// swarm*.go: SwarmPeer serving modes (answering every request
// "not found", announcing a manifest and going silent, serving a manifest
// or leaf layer that fails verification) and attacks on a server (session
// hellos that announce a large body and never send it, chunk requests
// whose answers are never read). Connection attacks live in net*.go
// (never-finished handshakes, throwaway identities, reconnects of one
// identity) and DHT attacks in dht*.go (floods of silent identities,
// captured and replayed datagrams). SlowLink (slowlink.go) is no attacker:
// a UDP relay that delays every datagram, so tests can check that an
// honest peer on a slow link is not taken for one.
package adversary
