// Package registry makes a shoal node a pull-through OCI registry mirror.
//
// A Mirror serves the pull half of the OCI distribution spec on a TCP
// address: GET and HEAD of /v2/, /v2/<name>/manifests/<reference> and
// /v2/<name>/blobs/<digest> (with ranges), with registry error bodies. It is
// read-only: pushes, deletes, tag lists and the catalog answer 405
// UNSUPPORTED. containerd's ?ns=<registry> parameter picks the upstream;
// without it the configured upstream serves.
//
// Manifests always come from the upstream (tags move), are cached for
// Config.ManifestTTL (default 30 s) by tag and for as long as they fit by
// digest, and are checked against their digest: the one asked for, or the
// upstream's Docker-Content-Digest header for a tag.
//
// Blobs are content addressed, so peers can serve them. A blob the node
// does not hold is looked for, in order:
//
//  1. in the DHT under BlobKey(digest) (SHA-256 of "shoal/oci-blob/v1" and
//     the digest; no other key space collides with it). Each provider is
//     asked, over an overlay stream tagged Tag, which shoal content holds the
//     blob (the mapping, see below). The content is fetched from the peers
//     that named it like any shoal content (every chunk BLAKE3-verified
//     against the content ID), then the SHA-256 of the whole file is checked
//     against the digest before any byte reaches a client. A mapping whose
//     content has the wrong size, is not a single file or hashes to another
//     digest costs every peer that gave it: the mirror ignores that peer's
//     mappings for Config.BanFor (default 1 h) and counts it
//     (shoal_registry_bad_mappings_total). It then tries the next mapping or
//     the upstream.
//  2. from the upstream, once per node at a time (concurrent requests for
//     one digest share one fetch). Before it asks the upstream, the node
//     claims the blob: it announces BlobKey(digest) at once (its mapping
//     answers "pending" with the bytes fetched so far) and looks in the DHT
//     again. Of several nodes missing the blob at the same moment, those
//     that see a claim from a lower PeerID wait for that node while its
//     fetch progresses (Config.StallTimeout) and then fetch from it as
//     above; the lowest goes to the upstream. Nodes that miss later find a
//     holder or a pending fetcher and wait for it. The bytes are
//     hashed as they arrive; a blob whose SHA-256 differs never reaches a
//     client. A verified blob is published as shoal content (seeded in
//     place) and stays announced.
//
// Nothing unverified reaches a client: blobs are served from files whose
// SHA-256 was checked, or, while the upstream sends one, streamed all but
// the last byte, which goes out only after the whole blob's SHA-256
// matched (else the connection is cut); manifests only after their digest
// was checked.
//
// # The mapping protocol (overlay stream tag 'r')
//
// One request and one answer per stream; each side closes its send side
// after writing, and reads at most 64 bytes.
//
//	request:  version=1 (1) | op=1 lookup (1) | algorithm=1 sha256 (1) | digest (32)
//	answer:   version=1 (1) | status (1) | body
//	  status 0 ready:   size (8, big endian) | content ID (32)
//	  status 1 pending: size (8; 0 when unknown) | bytes fetched so far (8)
//	  status 2 unknown: (empty)
//
// The server caps concurrent mapping streams at 64 in all and 4 per peer
// (more are reset at once; counted in shoal_registry_mapping_refused_total)
// and gives each stream 10 s.
//
// # Lifecycle
//
// New validates the config and binds the listener; Run serves until its
// context ends and returns after every goroutine it started has exited;
// Close releases the listener of a mirror that never ran. The node (seed)
// wires Node, registers ServeStream for Tag on its overlay and runs the
// mirror.
package registry
