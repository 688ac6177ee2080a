package chunker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func testManifests() map[string]*Manifest {
	return map[string]*Manifest{
		"empty file": {Name: "e", ChunkSize: MinChunkSize, DataShards: 16, ParityShards: 4, Hash: HashBLAKE3, Root: EmptyRoot},
		"file":       {Name: "big.iso", Size: 10<<20 + 3, ChunkSize: DefaultChunkSize, DataShards: 16, ParityShards: 4, Hash: HashBLAKE3, Root: [32]byte{1, 2, 3}},
		"no parity":  {Name: "x", Size: 1, ChunkSize: MaxChunkSize, DataShards: 1, ParityShards: 0, Hash: HashBLAKE3},
		"folder": {Name: "dir", Folder: true, Size: 30, ChunkSize: MinChunkSize, DataShards: 4, ParityShards: 2, Hash: HashBLAKE3,
			Files: []FileEntry{{Path: "a", Size: 10, Mode: ModeFile}, {Path: "b/c", Size: 0, Mode: ModeExec}, {Path: "b/d/é", Size: 20, Mode: ModeFile}}},
		"empty folder": {Name: "d", Folder: true, ChunkSize: MinChunkSize, DataShards: 16, ParityShards: 4, Hash: HashBLAKE3, Files: []FileEntry{}},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	for name, m := range testManifests() {
		t.Run(name, func(t *testing.T) {
			b, err := m.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := DecodeManifest(b)
			if err != nil {
				t.Fatalf("DecodeManifest: %v", err)
			}
			b2, err := got.Encode()
			if err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs (err %v):\n%x\n%x", err, b, b2)
			}
			if got.ID() != m.ID() {
				t.Fatalf("ID changed across the round trip")
			}
		})
	}
}

func TestManifestRejects(t *testing.T) {
	folder := testManifests()["folder"]
	enc := func(m *Manifest) []byte {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := enc(folder)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// Raw encoder that skips validation, to build bad manifests.
	raw := func(files []FileEntry, size int64) []byte {
		b := bytes.Clone(good[:54])
		binary.BigEndian.PutUint64(b[6:], uint64(size))
		n := (size + MinChunkSize - 1) / MinChunkSize
		stripes := (n + 3) / 4
		binary.BigEndian.PutUint64(b[14:], uint64(n+stripes*2))
		b = binary.BigEndian.AppendUint16(b, 3)
		b = append(b, "dir"...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(files)))
		for _, f := range files {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f.Path)))
			b = append(b, f.Path...)
			b = binary.BigEndian.AppendUint64(b, uint64(f.Size))
			b = binary.BigEndian.AppendUint16(b, uint16(f.Mode))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"version", mut(func(b []byte) []byte { b[0] = 2; return b }), "unknown version 2"},
		{"short", good[:40], "shorter than"},
		{"hash", mut(func(b []byte) []byte { b[1] = 9; return b }), "hash algorithm"},
		{"kind", mut(func(b []byte) []byte { b[2] = 7; return b }), "kind"},
		{"chunk size", mut(func(b []byte) []byte { b[3] = 13; return b }), "chunk size"},
		{"k zero", mut(func(b []byte) []byte { b[4] = 0; return b }), "stripe"},
		{"count", mut(func(b []byte) []byte { b[21]++; return b }), "chunk count"},
		{"trailing", append(bytes.Clone(good), 0), "trailing"},
		{"truncated", good[:len(good)-1], "bytes left"},
		{"name len", mut(func(b []byte) []byte { b[55] = 200; return b }), "name length"},
		{"sizes", raw([]FileEntry{{"a", 10, ModeFile}}, 11), "add up"},
		{"absolute", raw([]FileEntry{{"/a", 10, ModeFile}}, 10), "absolute"},
		{"dotdot", raw([]FileEntry{{"a/../b", 10, ModeFile}}, 10), `".." is not allowed`},
		{"empty path", raw([]FileEntry{{"", 10, ModeFile}}, 10), "empty path"},
		{"empty component", raw([]FileEntry{{"a//b", 10, ModeFile}}, 10), "empty"},
		{"duplicate", raw([]FileEntry{{"a", 5, ModeFile}, {"a", 5, ModeFile}}, 10), "duplicate"},
		{"unsorted", raw([]FileEntry{{"b", 5, ModeFile}, {"a", 5, ModeFile}}, 10), "sorted"},
		{"file under file", raw([]FileEntry{{"a", 5, ModeFile}, {"a/b", 5, ModeFile}}, 10), "under file"},
		{"mode", raw([]FileEntry{{"a", 10, 0o600}}, 10), "mode"},
		{"backslash", raw([]FileEntry{{`a\b`, 10, ModeFile}}, 10), "contains"},
		{"file count", mut(func(b []byte) []byte { b[59+0] = 0xff; return b }), "file count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeManifest(tc.in)
			if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeManifest = %v, %v; want ErrBadManifest mentioning %q", m, err, tc.want)
			}
		})
	}
}

func FuzzDecodeManifest(f *testing.F) {
	for _, m := range testManifests() {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("decode/encode is not canonical:\n in %x\nout %x", b, out)
		}
		m2, err := DecodeManifest(out)
		if err != nil || m2.ID() != m.ID() {
			t.Fatalf("second decode: %v", err)
		}
	})
}
