// Package chunker turns a file or a folder into shoal content: chunks,
// Reed-Solomon stripes, a Merkle tree, a manifest and a content ID; and it
// keeps the on-disk store that serves published items in place and writes
// downloads with a crash-safe record of verified chunks.
//
// It owns formats and files only: no network, no logging, and it imports no
// other shoal package. Publish runs a bounded pipeline and returns after its
// workers exit; a Download owns one syncer goroutine, stopped by Close.
//
// # Callers' duties, in order
//
// Publisher: OpenStore, Publish (gives the ID and manifest), Store.Open to
// get a seedable Item, Item.ReadChunk per request, Item.Close.
//
// Downloader: ParseLink; fetch the manifest bytes and check IDOf(bytes) ==
// link ID; DecodeManifest; fetch the leaf layer and DecodeLeaves (checks the
// Merkle root); Store.CreateDownload (or Store.OpenDownload to resume);
// WriteChunk per received chunk (ErrChunkMismatch means the sender sent bad
// data); Decode a stripe once StripeDecodable; Finish when Complete (rebuilds
// all missing parity and syncs; Download.ReadChunk also rebuilds a missing
// chunk of a decodable stripe on demand); Close. Or, to be done sooner:
// Close once Complete, move the output into place (Store.MoveOutput),
// Store.Open the item (it serves the chunks held) and Item.RebuildParity
// in the background.
//
// # Chunks and stripes
//
// The content of an item is a single file's bytes, or a folder's files
// concatenated in manifest order (a chunk may span file boundaries). It is
// cut into data chunks of ChunkSize bytes (the last may be shorter). Data
// chunks are grouped into stripes of k (DataShards); the last stripe may hold
// d_s < k. Each stripe gets m (ParityShards) parity chunks.
//
// Chunk index = position in the leaf layer: stripe s occupies indices
// [s*(k+m), s*(k+m)+d_s+m): its d_s data chunks, then its m parity chunks.
// Data chunk j of stripe s covers content bytes [(s*k+j)*ChunkSize, ...).
// A 0-byte input has 0 chunks and 0 stripes.
//
// Chunk size rule: an explicit size must be a power of two in [16 KiB,
// 4 MiB]. The automatic size (AutoChunkSize) is 256 KiB, doubled while the
// input would need more than TargetDataChunks = 65,536 data chunks, up to
// 4 MiB: inputs up to 16 GiB use 256 KiB chunks, the chunk count stays
// within 65,536 up to 256 GiB and grows past that. Any manifest has at most
// MaxChunks = 2^22 chunks (data and parity).
//
// Coding: RS(k, m) over GF(2^8), klauspost/reedsolomon's default systematic
// matrix, k+m <= 256, m = 0 turns coding off. The coding length P_s of
// stripe s is the length of its first data chunk (ChunkSize, except for a
// last stripe of one short chunk); parity chunks are P_s bytes. A short last
// data chunk is zero-padded to P_s for coding, and a short last stripe is
// coded as RS(k, m) with data shards d_s..k-1 all zero. Those zero shards
// are known to everyone, so any d_s of the d_s+m chunks of a stripe rebuild
// it. Padding is never sent or stored: every chunk travels at its exact
// length (Manifest.ChunkLen).
//
// # Merkle tree
//
// Chunk hash h_i = BLAKE3-256(chunk bytes, unpadded). The leaf layer is
// h_0..h_{n-1} in chunk-index order (data and parity). Tree nodes:
//
//	leaf(i)      = BLAKE3-256(0x00 || h_i)
//	inner(l, r)  = BLAKE3-256(0x01 || l || r)
//	root of none = BLAKE3-256(0x02)
//
// Each level pairs nodes (0,1), (2,3), ...; an odd last node is promoted
// unchanged to the next level (no duplication). An inclusion proof lists the
// siblings from the leaf level up, skipping levels where the path node is
// promoted. The leaf count n comes from the manifest, never from the proof.
// Proof encoding: version byte 0x01, node count (1 byte, <= 63), the nodes.
//
// # Manifest (version 1)
//
// All integers big-endian. Decoding rejects any other version, any length
// that does not fit, trailing bytes, and every rule below.
//
//	offset size field
//	0      1    version = 0x01
//	1      1    hash algorithm: 0x01 = BLAKE3-256
//	2      1    kind: 0x00 = single file, 0x01 = folder
//	3      1    log2(chunk size), 14..22
//	4      1    k, data chunks per stripe, >= 1
//	5      1    m, parity chunks per stripe, k+m <= 256
//	6      8    total content size in bytes
//	14     8    number of chunks (leaves), must equal the layout's count
//	22     32   Merkle root
//	54     2    name length n, 1..255
//	56     n    name: one path component, UTF-8
//	folder only:
//	+0     4    file count f
//	f times:
//	+0     2    path length p, 1..4096
//	+2     p    path, UTF-8, "/"-separated relative path
//	+2+p   8    file size
//	+10+p  2    mode: 0o644 or 0o755
//
// Names and path components are non-empty, at most 255 bytes, valid UTF-8,
// not "." or "..", and contain no "/", "\" or NUL; paths are not absolute.
// Files are sorted by path bytewise with no duplicates, no file lies under
// another file's path, and the sizes add up to the total. Only the
// executable bit survives: a file whose owner may execute is 0o755, any
// other 0o644. No timestamps, owners or empty folders are recorded, so the
// same input gives the same manifest on any machine. Encoded manifests are
// at most 8 MiB, with at most 2^18 files.
//
// # Content ID and links
//
// ContentID = BLAKE3-256(manifest bytes). Text form: "sh1" followed by the
// 32 bytes in base32 (RFC 4648 alphabet, lower case, no padding): 55
// characters; parsing accepts either case. A link:
//
//	shoal:<id>[?name=<name>][&peer=[<peerid>@]<host>:<port>]...
//
// with percent-encoded values, name as a suggested output name (manifest
// name rules), up to 32 peer hints, PeerID 64 hex digits (or empty), IPv6
// hosts in brackets. Unknown parameters are ignored.
//
// # Data folder (Store)
//
//	<dir>/items/<id text>/manifest  manifest bytes (hash checked against <id>)
//	<dir>/items/<id text>/leaves    leaf layer: n x 32 bytes
//	<dir>/items/<id text>/parity    parity chunks, stripe by stripe: parity
//	                                chunk j of stripe s at s*m*ChunkSize+j*P_s
//	<dir>/items/<id text>/meta      what the item is (below)
//	<dir>/items/<id text>/have      downloads only: verified-chunk bitmap
//	<dir>/items/<id text>/stamps    published only, optional: file stamps
//	                                seen while publishing (see stamps.go)
//	<dir>/tmp/                      staging; an item folder is written here
//	                                (each file fsync'ed under its final
//	                                name, then the folder) and renamed into
//	                                items/ when complete
//
// A published item's data is read in place from the user's file or folder
// (the path in meta); a downloaded item's data is the output it wrote.
// Publish fsyncs the manifest, leaves and meta but not the parity file: parity
// derives from the data, and a parity chunk that does not match its leaf
// (after a crash, say) is rebuilt from its stripe's verified data chunks when
// served, and written back. A download fsyncs parity like data, since its
// bitmap claims it.
//
// Meta file:
//
//	0  4  magic "SHIM"
//	4  1  version 0x01
//	5  1  kind: 0x01 published (served in place), 0x02 download
//	6  2  root path length r
//	8  r  absolute path of the content file or folder
//
// Bitmap file ("have"), replaced atomically (WriteFileAtomic: write a
// temporary file, fsync, rename, fsync the folder) after the output and
// parity files are fsync'ed. A bitmap found damaged (bad checksum, wrong
// length, other content) is rebuilt by OpenDownload: every chunk of the
// output and the parity file is read and checked against its leaf, the
// ones that match are kept, and the bitmap is written again
// (Download.Rebuilt reports it):
//
//	0     4   magic "SHBM"
//	4     1   version 0x01
//	5     32  content ID
//	37    4   chunk count n
//	41    b   bitmap, b = ceil(n/8): chunk i is bit i%8 (LSB first) of byte
//	          i/8; bits past n are zero
//	41+b  32  BLAKE3-256 of bytes [0, 41+b)
//
// # Verification on serve
//
// Item.ReadChunk and Download.ReadChunk check every chunk they read against
// its leaf, so a published file edited after publishing (or a damaged output
// or parity file) yields ErrModified and is never served. Download.ReadChunk
// and parity chunks are hashed on every read. An Item (on Linux) hashes a
// data chunk lying within one file only until it has matched once under
// the file's current stamp (device, inode, size, mtime, ctime, read with
// fstat just before and after each read): ctime moves on every write and
// cannot be set back, so a changed stamp forgets every remembered chunk.
// Results are remembered only for files last changed more than a second
// before the hashing began (a change within the same timestamp tick could
// leave the stamp as it was). Publish records the stamps it saw (unchanged
// from start to end of hashing) in the stamps file, and Store.Open starts
// from them, so a freshly published file is not hashed again on serve.
// Edits through a shared writable mmap, which move mtime only later, are
// not guaranteed to be caught before the next stamp change.
package chunker
