package chunker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/zeebo/blake3"
	"golang.org/x/sync/errgroup"
)

// PublishOptions tunes Publish. The zero value means defaults.
type PublishOptions struct {
	// ChunkSize in bytes, a power of two in [MinChunkSize, MaxChunkSize].
	// Default: AutoChunkSize of the input size.
	ChunkSize int
	// DataShards is k, data chunks per stripe. Default 16.
	DataShards int
	// ParityShards is m, parity chunks per stripe. Default 4 (0 means the
	// default; set NoParity for none).
	ParityShards int
	// NoParity turns erasure coding off (m = 0).
	NoParity bool
	// Workers is the number of stripes hashed and coded at once. Default
	// GOMAXPROCS. Memory use is one stripe buffer per worker.
	Workers int
	// Progress, if set, is called with the content bytes done so far and the
	// total, after each stripe. Calls are serialised; it must not block long.
	Progress func(done, total int64)
	// FollowSymlinks publishes the regular files that symlinks in a folder
	// point to. By default symlinks are left out and reported to Skipped.
	FollowSymlinks bool
	// Skipped, if set, gets the folder-relative path of each symlink or
	// other non-regular file left out of a folder.
	Skipped func(rel string)
}

func (o PublishOptions) withDefaults(size int64) (PublishOptions, error) {
	if o.ChunkSize == 0 {
		o.ChunkSize = AutoChunkSize(size)
	}
	if o.DataShards == 0 {
		o.DataShards = DefaultDataShards
	}
	if o.NoParity {
		o.ParityShards = 0
	} else if o.ParityShards == 0 {
		o.ParityShards = DefaultParityShards
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ParityShards < 0 {
		return o, fmt.Errorf("publish: parity shards %d < 0", o.ParityShards)
	}
	return o, nil
}

// Published is the result of Publish.
type Published struct {
	ID       ContentID
	Manifest *Manifest
	Encoded  []byte // the manifest bytes
	Leaves   *LeafLayer
}

// Publish chunks, hashes and codes the file or folder at path in one pass and
// returns its manifest and content ID. With a non-nil store it also records
// the item there (parity chunks, leaf layer, manifest; the data stays in
// place) so Store.Open can seed it; with a nil store it only computes.
//
// A folder's regular files are taken recursively, sorted by slash-separated
// relative path; empty folders are not recorded, and a symbolic link or other
// non-regular file is an error. Publish uses Workers goroutines and returns
// only after all of them have exited.
func Publish(ctx context.Context, st *Store, path string, opts PublishOptions) (*Published, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	m, err := scanInput(abs, opts)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	if opts, err = opts.withDefaults(m.Size); err != nil {
		return nil, err
	}
	m.ChunkSize, m.DataShards, m.ParityShards, m.Hash = opts.ChunkSize, opts.DataShards, opts.ParityShards, HashBLAKE3
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	var stage string
	var parity *os.File
	if st != nil {
		if stage, err = st.stageDir(); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		defer os.RemoveAll(stage) // a no-op once renamed into place
		if parity, err = createSized(filepath.Join(stage, fileParity), m.paritySize()); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
		defer parity.Close()
	}
	src := &pipelineSource{c: newContent(m, abs, false)}
	if !m.Folder && !publishNoMap {
		var unmap func()
		if src.mapped, unmap = mapFile(abs, m.Size); unmap != nil {
			defer unmap()
		}
	}
	var before []fileStamp
	settled := time.Now().Add(-settleMargin).UnixNano()
	if st != nil {
		before = stampAll(src.c)
	}
	hashes, err := runPipeline(ctx, m, src, parity, opts)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	if es := unchangedStamps(before, stampAll(src.c), settled); len(es) > 0 {
		if err := writeStaged(filepath.Join(stage, fileStamps), encodeStamps(es)); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	leaves := NewLeafLayer(hashes)
	m.Root = leaves.Root()
	enc, err := m.Encode()
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	p := &Published{ID: IDOf(enc), Manifest: m, Encoded: enc, Leaves: leaves}
	if st != nil {
		// The parity file is not fsync'ed: its chunks derive from the data
		// and Item.ReadChunk rebuilds any that a crash left stale.
		if err := st.commit(stage, p, itemMeta{kind: kindPublished, root: abs}); err != nil {
			return nil, fmt.Errorf("publish: %w", err)
		}
	}
	return p, nil
}

// scanInput builds the manifest skeleton (name, size, files) of path.
func scanInput(abs string, opts PublishOptions) (*Manifest, error) {
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Name: filepath.Base(abs)}
	if fi.Mode().IsRegular() {
		m.Size = fi.Size()
		return m, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("not a regular file or folder")
	}
	m.Folder = true
	m.Files = []FileEntry{}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 && opts.FollowSymlinks {
			if info, err = os.Stat(p); err != nil {
				return err
			}
		}
		if !info.Mode().IsRegular() {
			if opts.Skipped == nil {
				return fmt.Errorf("%s: not a regular file", p)
			}
			opts.Skipped(filepath.ToSlash(rel))
			return nil
		}
		if len(m.Files) == MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		m.Files = append(m.Files, FileEntry{Path: filepath.ToSlash(rel), Size: info.Size(), Mode: NormalizeMode(info.Mode())})
		m.Size += info.Size()
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	return m, nil
}

// stripeBuf is one worker's memory. data and zero are allocated on first
// use: a mapped file needs neither but for a short last chunk or stripe.
type stripeBuf struct {
	s      int
	data   []byte // k*ChunkSize, chunks read with pread
	short  []byte // ChunkSize, a mapped file's short last chunk (pread)
	zero   []byte // ChunkSize of zeros, the virtual shards of a short stripe
	parity []byte // m*ChunkSize
	shards [][]byte
}

// runPipeline hashes and codes every stripe. Workers claim stripes in order
// from a shared counter; each reads its stripe's data chunk by chunk (pread,
// so a chunk is hashed while it is still in cache), encodes and hashes the
// parity, and writes the parity to the parity file (if any) at its offset.
// Every content byte is read once; memory is one stripe buffer per worker.
// It returns the chunk hashes.
func runPipeline(ctx context.Context, m *Manifest, src *pipelineSource, parity *os.File, opts PublishOptions) ([][32]byte, error) {
	defer src.c.Close()
	hashes := make([][32]byte, m.NumChunks())
	nStripes := m.NumStripes()
	if nStripes == 0 {
		return hashes, nil
	}
	var next atomic.Int64
	var progMu sync.Mutex
	var done int64
	g, gctx := errgroup.WithContext(ctx)
	for range min(opts.Workers, nStripes) {
		g.Go(func() error {
			if src.mapped != nil {
				// A mapped file cut short under us faults; make that a panic
				// that codeStripe turns into ErrModified.
				defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			}
			b := &stripeBuf{parity: make([]byte, m.ParityShards*m.ChunkSize), shards: make([][]byte, m.StripeWidth())}
			for {
				s := int(next.Add(1) - 1)
				if s >= nStripes {
					return nil
				}
				if err := gctx.Err(); err != nil {
					return context.Cause(gctx)
				}
				b.s = s
				n, err := codeStripe(m, b, src, hashes, parity)
				if err != nil {
					return err
				}
				if opts.Progress != nil {
					progMu.Lock()
					done += n
					opts.Progress(done, m.Size)
					progMu.Unlock()
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return hashes, nil
}

// publishNoMap turns the mapping off (benchmarks compare both paths).
var publishNoMap = false

// pipelineSource is Publish's input: the content, and for a single file
// its read-only mapping when the platform allows (nil otherwise).
type pipelineSource struct {
	c      *content
	mapped []byte
}

// codeStripe reads, hashes and codes one stripe; it returns its content
// bytes. Full chunks of a mapped file are used in place; others are read
// into b.data, or for a mapped file into b.short.
func codeStripe(m *Manifest, b *stripeBuf, src *pipelineSource, hashes [][32]byte, parity *os.File) (n int64, err error) {
	if src.mapped != nil {
		defer func() {
			if r := recover(); r != nil {
				if f, ok := r.(interface{ Addr() uintptr }); ok && inside(src.mapped, f.Addr()) {
					err = fmt.Errorf("input cut short while reading: %w", ErrModified)
					return
				}
				panic(r)
			}
		}()
	}
	s, cs := b.s, m.ChunkSize
	d, p, base := m.StripeDataCount(s), m.stripeShardLen(s), m.StripeStart(s)
	data := b.shards[:d] // each chunk's bytes, padded to p for coding
	for j := range d {
		l := m.ChunkLen(base + j)
		off := m.DataChunkOffset(base + j)
		if src.mapped != nil && l == p {
			data[j] = src.mapped[off : off+int64(l)]
		} else {
			switch {
			case src.mapped != nil: // only a file's last chunk is short
				if b.short == nil {
					b.short = make([]byte, cs)
				}
				data[j] = b.short[:p]
			default:
				if b.data == nil {
					b.data = make([]byte, m.DataShards*cs)
				}
				data[j] = b.data[j*cs : j*cs+p]
			}
			if err := src.c.ReadAt(data[j][:l], off); err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) {
					err = fmt.Errorf("input shrank while reading: %w", ErrModified)
				}
				return 0, fmt.Errorf("reading chunk %d: %w", base+j, err)
			}
			clear(data[j][l:]) // zero-pad a short last chunk to the coding length
		}
		hashes[base+j] = blake3.Sum256(data[j][:l])
		n += int64(l)
	}
	if m.ParityShards == 0 {
		return n, nil
	}
	shards := b.shards
	for j := d; j < m.DataShards; j++ {
		if b.zero == nil {
			b.zero = make([]byte, cs)
		}
		shards[j] = b.zero[:p]
	}
	for j := range m.ParityShards {
		shards[m.DataShards+j] = b.parity[j*p : (j+1)*p]
	}
	enc, err := rsFor(m.DataShards, m.ParityShards)
	if err != nil {
		return 0, err
	}
	if err := enc.Encode(shards); err != nil {
		return 0, fmt.Errorf("encoding stripe %d: %w", s, err)
	}
	for j := range m.ParityShards {
		hashes[base+d+j] = blake3.Sum256(shards[m.DataShards+j])
	}
	if parity != nil {
		if _, err := parity.WriteAt(b.parity[:m.ParityShards*p], m.parityOffset(base+d)); err != nil {
			return 0, fmt.Errorf("writing parity of stripe %d: %w", s, err)
		}
	}
	return n, nil
}

// createSized creates (truncating) a file of the given size.
func createSized(path string, size int64) (*os.File, error) {
	return createSizedWith(path, size, preallocate)
}

// createSizedWith is createSized with setSize (preallocate or truncate)
// setting the size.
func createSizedWith(path string, size int64, setSize func(*os.File, int64) error) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if err := setSize(f, size); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// truncate sets f's size without reserving blocks: a sparse file.
func truncate(f *os.File, size int64) error { return f.Truncate(size) }

// inside reports whether addr points into b.
func inside(b []byte, addr uintptr) bool {
	if len(b) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(&b[0]))
	return addr >= start && addr < start+uintptr(len(b))
}
