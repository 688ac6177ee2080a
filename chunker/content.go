package chunker

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"
)

// maxCachedFiles: a content with at most this many files keeps them open;
// a larger folder opens a file for each access, so descriptors stay bounded.
const maxCachedFiles = 64

// content is the byte space of an item: a single file, or the files of a
// folder concatenated in manifest order. ReadAt and WriteAt may be called
// concurrently (os.File's ReadAt/WriteAt are).
type content struct {
	paths []string // absolute paths in manifest order
	offs  []int64  // content offset of each file
	sizes []int64
	write bool

	mu    sync.Mutex
	fds   []*os.File // cached descriptors (len(paths) <= maxCachedFiles)
	dirty []bool     // written since the last sync

	// Direct I/O for a download's output (see useDirect): a second
	// descriptor per file, opened on first use; guarded by mu.
	direct bool
	dio    []directFile
}

// directFile is file j's direct-I/O descriptor: f is nil once tried and
// found unsupported (or refused by the kernel), and then stays nil. A
// refused descriptor is kept open in dropped until Close, as other
// goroutines may still be using it.
type directFile struct {
	tried   bool
	f       *os.File
	dropped *os.File
	align   directAlign
}

// directAlign is what direct I/O asks of a transfer: its buffer's address
// a multiple of mem, its file offset and length multiples of off.
type directAlign struct {
	mem uintptr
	off int64
}

func (a directAlign) fits(p []byte, fileOff int64) bool {
	return a.off > 0 && len(p) > 0 && fileOff%a.off == 0 && int64(len(p))%a.off == 0 &&
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%a.mem == 0
}

// newContent describes the files of m under root (root is the file itself
// for a single file, the folder for a folder).
func newContent(m *Manifest, root string, write bool) *content {
	c := &content{write: write}
	if !m.Folder {
		c.paths, c.offs, c.sizes = []string{root}, []int64{0}, []int64{m.Size}
	} else {
		var off int64
		for _, f := range m.Files {
			c.paths = append(c.paths, filepath.Join(root, filepath.FromSlash(f.Path)))
			c.offs = append(c.offs, off)
			c.sizes = append(c.sizes, f.Size)
			off += f.Size
		}
	}
	c.fds = make([]*os.File, len(c.paths))
	c.dirty = make([]bool, len(c.paths))
	return c
}

// useDirect makes aligned reads and writes of the files bypass the page
// cache where the file system supports direct I/O (Linux, statx
// STATX_DIOALIGN). A download's output is written once and read back only
// to serve chunks to peers, so copying every byte into new page-cache
// pages (and later writing them back) is work the download does not need:
// in a (1,8) swarm on 2 cores that copy was the largest single cost of the
// downloaders (up to 46 % of their perf samples; direct I/O cut their CPU
// by about a tenth, docs/benchmarks.md). Transfers that are not aligned
// (the last chunk, pieces of a folder's files) and files without direct
// I/O use the page cache as before; the kernel keeps the two coherent.
func (c *content) useDirect() {
	if len(c.paths) <= maxCachedFiles {
		c.direct = true
		c.dio = make([]directFile, len(c.paths))
	}
}

// directFor returns file j's direct descriptor if p at fileOff fits its
// alignment, else nil.
func (c *content) directFor(j int, p []byte, fileOff int64) *os.File {
	if !c.direct {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fds == nil {
		return nil // closed; the caller's open reports it
	}
	d := &c.dio[j]
	if !d.tried {
		d.tried = true
		d.f, d.align = openDirect(c.paths[j])
	}
	if d.f == nil || !d.align.fits(p, fileOff) {
		return nil
	}
	return d.f
}

// dropDirect stops direct I/O on file j after the kernel refused a
// transfer that looked aligned.
func (c *content) dropDirect(j int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dio == nil {
		return
	}
	if d := &c.dio[j]; d.f != nil {
		d.dropped, d.f = d.f, nil
	}
}

// directOps counts reads and writes done with direct I/O, for tests.
var directOps atomic.Int64

// pread reads p from file j at fileOff, directly where it can.
func (c *content) pread(j int, f *os.File, p []byte, fileOff int64) (int, error) {
	if df := c.directFor(j, p, fileOff); df != nil {
		directOps.Add(1)
		n, err := df.ReadAt(p, fileOff)
		if !directRefused(err) {
			return n, err
		}
		c.dropDirect(j)
	}
	return f.ReadAt(p, fileOff)
}

// pwrite writes p to file j at fileOff, directly where it can.
func (c *content) pwrite(j int, f *os.File, p []byte, fileOff int64) (int, error) {
	if df := c.directFor(j, p, fileOff); df != nil {
		directOps.Add(1)
		n, err := df.WriteAt(p, fileOff)
		if !directRefused(err) {
			return n, err
		}
		c.dropDirect(j)
	}
	return f.WriteAt(p, fileOff)
}

// open returns a descriptor for file j and whether the caller must close it.
func (c *content) open(j int) (*os.File, bool, error) {
	flag := os.O_RDONLY
	if c.write {
		// Never follow a symlink planted at an output path (say, between
		// a crash and the resume): write only into the files we made.
		flag = os.O_RDWR | oNoFollow
	}
	if len(c.paths) > maxCachedFiles {
		f, err := os.OpenFile(c.paths[j], flag, 0)
		return f, true, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fds == nil {
		return nil, false, ErrClosed
	}
	if c.fds[j] == nil {
		f, err := os.OpenFile(c.paths[j], flag, 0)
		if err != nil {
			return nil, false, err
		}
		c.fds[j] = f
	}
	return c.fds[j], false, nil
}

// span calls fn for each file piece covering [off, off+n).
func (c *content) span(off int64, n int, fn func(j int, fileOff int64, lo, hi int) error) error {
	j := sort.Search(len(c.offs), func(j int) bool { return c.offs[j]+c.sizes[j] > off })
	done := 0
	for done < n {
		if j >= len(c.paths) {
			return io.ErrUnexpectedEOF
		}
		fo := off + int64(done) - c.offs[j]
		take := int(min(int64(n-done), c.sizes[j]-fo))
		if take > 0 {
			if err := fn(j, fo, done, done+take); err != nil {
				return err
			}
			done += take
		}
		j++
	}
	return nil
}

// fileOf returns the file holding all of [off, off+n), or false if the
// range spans files or lies past the end.
func (c *content) fileOf(off int64, n int) (int, bool) {
	j := sort.Search(len(c.offs), func(j int) bool { return c.offs[j]+c.sizes[j] > off })
	if j >= len(c.paths) || off+int64(n) > c.offs[j]+c.sizes[j] {
		return 0, false
	}
	return j, true
}

// ReadAt fills p from content offset off.
func (c *content) ReadAt(p []byte, off int64) error {
	return c.span(off, len(p), func(j int, fo int64, lo, hi int) error {
		f, own, err := c.open(j)
		if err != nil {
			return err
		}
		_, err = c.pread(j, f, p[lo:hi], fo)
		if own {
			f.Close()
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	})
}

// WriteAt writes p at content offset off.
func (c *content) WriteAt(p []byte, off int64) error {
	return c.span(off, len(p), func(j int, fo int64, lo, hi int) error {
		f, own, err := c.open(j)
		if err != nil {
			return err
		}
		_, err = c.pwrite(j, f, p[lo:hi], fo)
		if own {
			f.Close()
		}
		c.mu.Lock()
		c.dirty[j] = true
		c.mu.Unlock()
		return err
	})
}

// Sync flushes every file written since the last Sync to stable storage
// (reopening the files of a large folder, whose descriptors are not kept).
func (c *content) Sync() error {
	c.mu.Lock()
	var todo []int
	for j, d := range c.dirty {
		if d {
			todo = append(todo, j)
			c.dirty[j] = false
		}
	}
	c.mu.Unlock()
	for _, j := range todo {
		f, own, err := c.open(j)
		if err == nil {
			err = f.Sync()
			if own {
				f.Close()
			}
		}
		if err != nil {
			c.mu.Lock()
			c.dirty[j] = true
			c.mu.Unlock()
			return fmt.Errorf("syncing %s: %w", c.paths[j], err)
		}
	}
	return nil
}

// checkSizes reports ErrModified if any file is missing or has the wrong size.
func (c *content) checkSizes() error {
	for j, p := range c.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w: %w", p, ErrModified, err)
		}
		if !fi.Mode().IsRegular() || fi.Size() != c.sizes[j] {
			return fmt.Errorf("%s: size %d, published %d: %w", p, fi.Size(), c.sizes[j], ErrModified)
		}
	}
	return nil
}

// Close closes cached descriptors.
func (c *content) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for _, f := range c.fds {
		if f != nil {
			if err := f.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
	for _, d := range c.dio {
		for _, f := range []*os.File{d.f, d.dropped} {
			if f != nil {
				if err := f.Close(); err != nil && first == nil {
					first = err
				}
			}
		}
	}
	c.fds, c.dio = nil, nil
	return first
}

// MoveOutput records that the output of download id now lives at newRoot
// (the file, or the folder, that the caller renamed there). Close every
// Download of id first; the next OpenDownload or Open uses newRoot.
func (s *Store) MoveOutput(id ContentID, newRoot string) error {
	dir := s.itemDir(id)
	meta, err := readMeta(dir)
	if err != nil {
		return fmt.Errorf("moving output of %s: %w", id, err)
	}
	if meta.kind != kindDownload {
		return fmt.Errorf("moving output of %s: not a download: %w", id, ErrBadState)
	}
	meta.root = newRoot
	if err := writeFileAtomic(filepath.Join(dir, fileMeta), meta.encode()); err != nil {
		return fmt.Errorf("moving output of %s: %w", id, err)
	}
	return nil
}
