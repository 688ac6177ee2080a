package chunker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The stamps file of a published item records, for each content file whose
// bytes did not change while Publish hashed them, the file's stamp then.
// Store.Open trusts every data chunk lying within a file whose stamp is
// still the same (the verify cache starts full), so a freshly published
// item is not hashed a second time when it is served.
//
//	0   4  magic "SHST"
//	4   1  version 0x01
//	5   4  entry count e (at most the manifest's file count)
//	9   e  entries of 44 bytes: file index (4), dev (8), inode (8),
//	       size (8), mtime (8), ctime (8, Unix nanoseconds, signed)
const (
	stampsMagic    = "SHST"
	stampsHdrLen   = 9
	stampEntryLen  = 44
	stampsMaxFiles = maxCachedFiles
)

// stampEntry is one recorded file.
type stampEntry struct {
	file  int
	stamp fileStamp
}

func encodeStamps(es []stampEntry) []byte {
	b := append([]byte(stampsMagic), 1)
	b = binary.BigEndian.AppendUint32(b, uint32(len(es)))
	for _, e := range es {
		s := e.stamp
		b = binary.BigEndian.AppendUint32(b, uint32(e.file))
		b = binary.BigEndian.AppendUint64(b, s.dev)
		b = binary.BigEndian.AppendUint64(b, s.ino)
		b = binary.BigEndian.AppendUint64(b, uint64(s.size))
		b = binary.BigEndian.AppendUint64(b, uint64(s.mtime))
		b = binary.BigEndian.AppendUint64(b, uint64(s.ctime))
	}
	return b
}

// decodeStamps decodes a stamps file for content of files files.
func decodeStamps(b []byte, files int) ([]stampEntry, error) {
	if len(b) < stampsHdrLen || string(b[:4]) != stampsMagic || b[4] != 1 {
		return nil, fmt.Errorf("stamps file: bad header: %w", ErrBadState)
	}
	n := binary.BigEndian.Uint32(b[5:])
	if uint64(n) > uint64(files) || uint64(len(b)-stampsHdrLen) != uint64(n)*stampEntryLen {
		return nil, fmt.Errorf("stamps file: %d entries in %d bytes for %d files: %w", n, len(b), files, ErrBadState)
	}
	es := make([]stampEntry, n)
	p := b[stampsHdrLen:]
	for k := range es {
		e := p[k*stampEntryLen:]
		j := binary.BigEndian.Uint32(e)
		if uint64(j) >= uint64(files) {
			return nil, fmt.Errorf("stamps file: file %d of %d: %w", j, files, ErrBadState)
		}
		es[k] = stampEntry{file: int(j), stamp: fileStamp{
			dev:   binary.BigEndian.Uint64(e[4:]),
			ino:   binary.BigEndian.Uint64(e[12:]),
			size:  int64(binary.BigEndian.Uint64(e[20:])),
			mtime: int64(binary.BigEndian.Uint64(e[28:])),
			ctime: int64(binary.BigEndian.Uint64(e[36:])),
		}}
	}
	return es, nil
}

// stampAll returns the stamps of c's files (ok false for a file without
// one); nil for content with too many files to cache.
func stampAll(c *content) []fileStamp {
	if len(c.paths) > stampsMaxFiles {
		return nil
	}
	ss := make([]fileStamp, len(c.paths))
	for j, p := range c.paths {
		ss[j], _ = statStamp(p)
	}
	return ss
}

// unchangedStamps returns the entries for the files whose stamp is known,
// the same before and after, and settled by the start.
func unchangedStamps(before, after []fileStamp, startNano int64) []stampEntry {
	var es []stampEntry
	for j := range min(len(before), len(after)) {
		s := before[j]
		if s != (fileStamp{}) && s == after[j] && s.ctime < startNano && s.mtime < startNano {
			es = append(es, stampEntry{file: j, stamp: s})
		}
	}
	return es
}

// loadStamps fills h's verify cache from the item's stamps file, for the
// files whose stamp is unchanged. A missing or bad file only means every
// chunk is hashed when first served.
func (h *holding) loadStamps() {
	b, err := os.ReadFile(filepath.Join(h.dir, fileStamps))
	if errors.Is(err, fs.ErrNotExist) || err != nil {
		return
	}
	es, err := decodeStamps(b, len(h.data.paths))
	if err != nil {
		return
	}
	m := h.man
	for _, e := range es {
		if s, ok := h.data.stamp(e.file); !ok || s != e.stamp {
			continue
		}
		var chunks []int
		for g := range m.NumDataChunks() {
			i := m.ChunkOfData(g)
			if j, ok := h.data.fileOf(m.DataChunkOffset(i), m.ChunkLen(i)); ok && j == e.file {
				chunks = append(chunks, i)
			}
		}
		h.vc.trust(e.file, e.stamp, chunks)
	}
}
