package chunker

import (
	"sync"
	"sync/atomic"
	"time"
)

// settleMargin is how old a file's last change (ctime and mtime) must be
// when a chunk of it is verified for the result to be remembered. A file
// changed within the same timestamp tick as the verification could be
// changed again without its times moving; waiting a margin rules that out
// (the "racy clean" problem of file-status caches). Tests lower it.
var settleMargin = time.Second

// verifyHashes counts chunks hashed by readVerified, for tests.
var verifyHashes atomic.Int64

// fileStamp identifies one state of a file: anything that changes its
// bytes in place (or replaces it) changes the stamp, because the kernel
// moves ctime (which no user call can set back) on every write.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // Unix nanoseconds
}

// settledBy reports whether the file last changed more than settleMargin
// before t.
func (s fileStamp) settledBy(t time.Time) bool {
	lim := t.Add(-settleMargin).UnixNano()
	return s.ctime < lim && s.mtime < lim
}

// verifyCache remembers which data chunks of a published item were found to
// match their leaves, and under which stamp of their file, so serving a
// chunk again costs two fstat calls instead of a BLAKE3 pass. Any change of
// a file's stamp forgets every chunk. Only chunks lying within one file are
// remembered.
type verifyCache struct {
	mu     sync.Mutex
	stamps []fileStamp // per content file; zero: none remembered
	ok     Bitmap      // chunks verified under stamps
}

func newVerifyCache(files, chunks int) *verifyCache {
	return &verifyCache{stamps: make([]fileStamp, files), ok: NewBitmap(chunks)}
}

// known reports whether chunk i of file j was verified while the file had
// stamp s.
func (v *verifyCache) known(i, j int, s fileStamp) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stamps[j] == s && v.ok.Has(i)
}

// mark records that chunk i of file j matched its leaf while the file had
// stamp s. A new stamp for j forgets every chunk remembered so far.
func (v *verifyCache) mark(i, j int, s fileStamp) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.restamp(j, s)
	v.ok.Set(i)
}

// restamp sets file j's stamp to s; a changed stamp forgets every chunk.
// v.mu must be held.
func (v *verifyCache) restamp(j int, s fileStamp) {
	if v.stamps[j] != s {
		if v.stamps[j] != (fileStamp{}) {
			clear(v.ok)
		}
		v.stamps[j] = s
	}
}

// trust records chunks of file j as verified under stamp s (from the
// stamps file written by Publish).
func (v *verifyCache) trust(j int, s fileStamp, chunks []int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.restamp(j, s)
	for _, i := range chunks {
		v.ok.Set(i)
	}
}
