package chunker

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// ManifestVersion is the only manifest version this package reads and writes.
const ManifestVersion = 1

// HashAlg names the hash of chunks, Merkle nodes and content IDs.
type HashAlg uint8

// HashBLAKE3 is BLAKE3-256, the only algorithm of version 1.
const HashBLAKE3 HashAlg = 1

// Manifest limits.
const (
	MaxNameLen      = 255     // bytes of Manifest.Name and of each path component
	MaxPathLen      = 4096    // bytes of File.Path
	MaxFiles        = 1 << 18 // files of a folder
	MaxManifestSize = 8 << 20 // encoded bytes
	maxSize         = int64(MaxChunks) * MaxChunkSize
)

// File modes kept in a manifest: the executable bit only.
const (
	ModeFile fs.FileMode = 0o644
	ModeExec fs.FileMode = 0o755
)

// NormalizeMode maps any permission bits to ModeExec if the owner may
// execute, else ModeFile.
func NormalizeMode(m fs.FileMode) fs.FileMode {
	if m&0o100 != 0 {
		return ModeExec
	}
	return ModeFile
}

// Manifest describes one published item: a single file or a folder.
// A Manifest is a plain value; callers must not modify one that others use.
type Manifest struct {
	Name         string      // file or folder name, one path component
	Folder       bool        // true for a folder (Files lists its files)
	Size         int64       // content bytes; for a folder the sum of file sizes
	ChunkSize    int         // bytes per data chunk, a power of two
	DataShards   int         // k: data chunks per full stripe
	ParityShards int         // m: parity chunks per stripe, 0 for none
	Hash         HashAlg     // always HashBLAKE3
	Root         [32]byte    // Merkle root over all chunk hashes
	Files        []FileEntry // folder only: sorted by Path (bytewise), unique
}

// FileEntry is one file of a folder.
type FileEntry struct {
	Path string      // relative, "/"-separated, validated (see package doc)
	Size int64       // bytes
	Mode fs.FileMode // ModeFile or ModeExec
}

// ID returns the content ID: BLAKE3-256 of the encoded manifest. It panics if
// the manifest is invalid; use Encode first when in doubt.
func (m *Manifest) ID() ContentID {
	b, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return IDOf(b)
}

// Encode returns the canonical encoding, or an error if the manifest is
// invalid.
func (m *Manifest) Encode() ([]byte, error) { return m.AppendTo(nil) }

// AppendTo appends the canonical encoding to b.
func (m *Manifest) AppendTo(b []byte) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, ManifestVersion, byte(m.Hash), 0, byte(bits.TrailingZeros(uint(m.ChunkSize))), byte(m.DataShards), byte(m.ParityShards))
	if m.Folder {
		b[start+2] = 1
	}
	b = binary.BigEndian.AppendUint64(b, uint64(m.Size))
	b = binary.BigEndian.AppendUint64(b, uint64(m.NumChunks()))
	b = append(b, m.Root[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Name)))
	b = append(b, m.Name...)
	if m.Folder {
		b = binary.BigEndian.AppendUint32(b, uint32(len(m.Files)))
		for _, f := range m.Files {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f.Path)))
			b = append(b, f.Path...)
			b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
			b = binary.BigEndian.AppendUint16(b, uint16(f.Mode))
		}
	}
	if len(b)-start > MaxManifestSize {
		return b[:start], fmt.Errorf("%w: encoding is %d bytes, limit %d", ErrBadManifest, len(b)-start, MaxManifestSize)
	}
	return b, nil
}

// Validate checks every field rule; Encode and DecodeManifest call it.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadManifest}, args...)...)
	}
	if m.Hash != HashBLAKE3 {
		return bad("unknown hash algorithm %d", m.Hash)
	}
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize || m.ChunkSize&(m.ChunkSize-1) != 0 {
		return bad("chunk size %d is not a power of two in [%d, %d]", m.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if m.DataShards < 1 || m.ParityShards < 0 || m.DataShards+m.ParityShards > MaxShards {
		return bad("stripe %d+%d: want k >= 1, m >= 0, k+m <= %d", m.DataShards, m.ParityShards, MaxShards)
	}
	if m.Size < 0 || m.Size > maxSize {
		return bad("size %d out of range", m.Size)
	}
	if n := m.NumChunks(); n > MaxChunks {
		return bad("%d chunks, limit %d", n, MaxChunks)
	}
	if err := validName(m.Name); err != nil {
		return bad("name: %v", err)
	}
	if !m.Folder {
		if m.Files != nil {
			return bad("a single file has no file list")
		}
		return nil
	}
	if len(m.Files) > MaxFiles {
		return bad("%d files, limit %d", len(m.Files), MaxFiles)
	}
	var sum int64
	seen := make(map[string]bool, len(m.Files))
	for i, f := range m.Files {
		if err := validPath(f.Path); err != nil {
			return bad("file %d: %v", i, err)
		}
		if i > 0 && m.Files[i-1].Path >= f.Path {
			if m.Files[i-1].Path == f.Path {
				return bad("file %d: duplicate path %q", i, f.Path)
			}
			return bad("file %d: path %q not in sorted order", i, f.Path)
		}
		if f.Size < 0 || f.Size > maxSize-sum {
			return bad("file %d: size %d out of range", i, f.Size)
		}
		if f.Mode != ModeFile && f.Mode != ModeExec {
			return bad("file %d: mode %o, want %o or %o", i, f.Mode, ModeFile, ModeExec)
		}
		sum += f.Size
		seen[f.Path] = true
	}
	for i, f := range m.Files {
		for j := strings.IndexByte(f.Path, '/'); j >= 0; j = nextSlash(f.Path, j) {
			if seen[f.Path[:j]] {
				return bad("file %d: %q is under file %q", i, f.Path, f.Path[:j])
			}
		}
	}
	if sum != m.Size {
		return bad("file sizes add up to %d, manifest size is %d", sum, m.Size)
	}
	return nil
}

func nextSlash(p string, j int) int {
	k := strings.IndexByte(p[j+1:], '/')
	if k < 0 {
		return -1
	}
	return j + 1 + k
}

// validName checks one path component.
func validName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxNameLen:
		return fmt.Errorf("%d bytes, limit %d", len(s), MaxNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not allowed", s)
	case !utf8.ValidString(s):
		return fmt.Errorf("%q is not valid UTF-8", s)
	case strings.ContainsAny(s, "/\\\x00"):
		return fmt.Errorf("%q contains '/', '\\' or NUL", s)
	}
	return nil
}

// validPath checks a relative "/"-separated path.
func validPath(p string) error {
	if p == "" {
		return fmt.Errorf("empty path")
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("path of %d bytes, limit %d", len(p), MaxPathLen)
	}
	if p[0] == '/' {
		return fmt.Errorf("absolute path %q", p)
	}
	for c := range strings.SplitSeq(p, "/") {
		if err := validName(c); err != nil {
			return fmt.Errorf("path %q: component %v", p, err)
		}
	}
	return nil
}

// manifestHeaderLen is the fixed part before the name bytes.
const manifestHeaderLen = 56

// DecodeManifest parses and validates canonical manifest bytes. It rejects
// unknown versions, bad lengths, invalid fields and trailing bytes, and
// allocates only in proportion to len(b).
func DecodeManifest(b []byte) (*Manifest, error) {
	bad := func(format string, args ...any) (*Manifest, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrBadManifest}, args...)...)
	}
	if len(b) > MaxManifestSize {
		return bad("%d bytes, limit %d", len(b), MaxManifestSize)
	}
	if len(b) < 1 {
		return bad("empty")
	}
	if b[0] != ManifestVersion {
		return bad("unknown version %d", b[0])
	}
	if len(b) < manifestHeaderLen {
		return bad("%d bytes, shorter than the %d-byte header", len(b), manifestHeaderLen)
	}
	m := &Manifest{Hash: HashAlg(b[1])}
	switch b[2] {
	case 0:
	case 1:
		m.Folder = true
	default:
		return bad("unknown kind %d", b[2])
	}
	if b[3] < 14 || b[3] > 22 {
		return bad("chunk size exponent %d out of range [14, 22]", b[3])
	}
	m.ChunkSize = 1 << b[3]
	m.DataShards, m.ParityShards = int(b[4]), int(b[5])
	size := binary.BigEndian.Uint64(b[6:])
	if size > uint64(maxSize) {
		return bad("size %d out of range", size)
	}
	m.Size = int64(size)
	count := binary.BigEndian.Uint64(b[14:])
	copy(m.Root[:], b[22:54])
	r := b[54:]
	nameLen := int(binary.BigEndian.Uint16(r))
	r = r[2:]
	if nameLen > len(r) {
		return bad("name length %d exceeds the %d bytes left", nameLen, len(r))
	}
	m.Name, r = string(r[:nameLen]), r[nameLen:]
	if m.Folder {
		if len(r) < 4 {
			return bad("truncated file count")
		}
		n := binary.BigEndian.Uint32(r)
		r = r[4:]
		const minEntry = 2 + 8 + 2
		if uint64(n) > uint64(len(r)/minEntry) || n > MaxFiles {
			return bad("file count %d does not fit in %d bytes", n, len(r))
		}
		m.Files = make([]FileEntry, n)
		for i := range m.Files {
			if len(r) < 2 {
				return bad("file %d: truncated path length", i)
			}
			pl := int(binary.BigEndian.Uint16(r))
			r = r[2:]
			if pl+10 > len(r) {
				return bad("file %d: path length %d exceeds the %d bytes left", i, pl, len(r))
			}
			f := &m.Files[i]
			f.Path = string(r[:pl])
			sz := binary.BigEndian.Uint64(r[pl:])
			if sz > uint64(maxSize) {
				return bad("file %d: size %d out of range", i, sz)
			}
			f.Size = int64(sz)
			f.Mode = fs.FileMode(binary.BigEndian.Uint16(r[pl+8:]))
			r = r[pl+10:]
		}
	}
	if len(r) != 0 {
		return bad("%d trailing bytes", len(r))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if count != uint64(m.NumChunks()) {
		return bad("chunk count %d, layout gives %d", count, m.NumChunks())
	}
	return m, nil
}
