package chunker

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Names inside a store; see the package doc for the layout.
const (
	dirItems     = "items"
	dirTmp       = "tmp"
	fileManifest = "manifest"
	fileLeaves   = "leaves"
	fileParity   = "parity"
	fileMeta     = "meta"
	fileHave     = "have"
	fileStamps   = "stamps"
)

// Item kinds recorded in an item's meta file.
const (
	kindPublished = 1 // content is the user's file or folder, served in place
	kindDownload  = 2 // content was (or is being) written by a Download
)

// Store is the data folder: per item its manifest, leaf layer, parity chunks
// and, for downloads, the verified-chunk bitmap. The data of a published
// item stays where the user keeps it. A Store is safe for concurrent use; the
// items it opens are independent objects with their own rules.
type Store struct {
	dir string
}

// OpenStore opens (creating if needed) the data folder dir.
func OpenStore(dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, dirItems), filepath.Join(dir, dirTmp)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
	}
	return &Store{dir: dir}, nil
}

// Dir returns the data folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) itemDir(id ContentID) string { return filepath.Join(s.dir, dirItems, id.String()) }

func (s *Store) stageDir() (string, error) {
	var r [8]byte
	rand.Read(r[:])
	d := filepath.Join(s.dir, dirTmp, hex.EncodeToString(r[:]))
	return d, os.Mkdir(d, 0o700)
}

// ItemInfo describes a stored item.
type ItemInfo struct {
	ID       ContentID
	Manifest *Manifest
	Download bool   // written by a Download (else published in place)
	Root     string // the file or folder holding the content
	Complete bool   // every data chunk is held (always true when published)
}

// List returns every item in the store, sorted by ID text. Unreadable items
// are skipped silently (Open reports why).
func (s *Store) List() ([]ItemInfo, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, dirItems))
	if err != nil {
		return nil, fmt.Errorf("listing store: %w", err)
	}
	var out []ItemInfo
	for _, e := range ents {
		id, err := ParseID(e.Name())
		if err != nil {
			continue
		}
		info, err := s.Info(id)
		if err != nil {
			continue
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out, nil
}

// Info reads what the store records about id, without opening content.
func (s *Store) Info(id ContentID) (ItemInfo, error) {
	dir := s.itemDir(id)
	m, _, err := readManifest(dir, id)
	if err != nil {
		return ItemInfo{}, err
	}
	meta, err := readMeta(dir)
	if err != nil {
		return ItemInfo{}, err
	}
	info := ItemInfo{ID: id, Manifest: m, Download: meta.kind == kindDownload, Root: meta.root, Complete: true}
	if info.Download {
		have, err := readHave(dir, id, m)
		if err != nil {
			return ItemInfo{}, err
		}
		info.Complete = dataComplete(m, have)
	}
	return info, nil
}

// Remove deletes the store's records of id (manifest, leaves, parity,
// bitmap). It never deletes the content itself: a published file or a
// downloaded output stays. Close items of id before removing them.
func (s *Store) Remove(id ContentID) error {
	dir := s.itemDir(id)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", id, ErrNotFound)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", id, err)
	}
	return nil
}

// writeStaged writes a file into a staging folder and syncs it. The folder
// becomes visible only when commit renames it into place, after syncing it,
// so a staged file needs no temporary name, rename and folder sync of its
// own (as WriteFileAtomic does for a file in a live folder).
func writeStaged(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// commit writes the manifest, leaves and meta into stage, syncs the folder
// and moves it into place as the item folder of p.ID, replacing an older
// record of the same ID. The other files in stage are as their writers left
// them (the stamps and have files synced, the parity file not: see Publish).
func (s *Store) commit(stage string, p *Published, meta itemMeta) error {
	files := []struct {
		name string
		data []byte
	}{
		{fileManifest, p.Encoded},
		{fileLeaves, p.Leaves.Encode()},
		{fileMeta, meta.encode()},
	}
	for _, f := range files {
		if err := writeStaged(filepath.Join(stage, f.name), f.data); err != nil {
			return err
		}
	}
	if err := syncDir(stage); err != nil {
		return err
	}
	dst := s.itemDir(p.ID)
	unlock := lockItem(dst)
	defer unlock()
	// Move an older record aside (into tmp, removed below) rather than
	// deleting it in place: the rename into place then finds the path free.
	old := stage + ".old"
	if err := os.Rename(dst, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	defer os.RemoveAll(old)
	if err := os.Rename(stage, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// itemLocks serialises commits of one item folder within the process:
// concurrent publishes of one path (one content ID) would otherwise race
// between moving the old record away and renaming the new one into place.
// It holds one mutex per item folder committed since the start (a few
// dozen bytes each).
var itemLocks sync.Map // item folder -> *sync.Mutex

func lockItem(dir string) (unlock func()) {
	v, _ := itemLocks.LoadOrStore(dir, new(sync.Mutex))
	mu := v.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// readManifest reads and checks an item's manifest against its ID.
func readManifest(dir string, id ContentID) (*Manifest, []byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileManifest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, err
	}
	if IDOf(b) != id {
		return nil, nil, fmt.Errorf("%s: manifest does not hash to its id: %w", id, ErrBadState)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", id, err)
	}
	return m, b, nil
}

func readLeavesFile(dir string, m *Manifest) (*LeafLayer, error) {
	f, err := os.Open(filepath.Join(dir, fileLeaves))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLeaves(f, m)
}

// itemMeta is the meta file: see the package doc.
type itemMeta struct {
	kind byte
	root string
}

const metaMagic = "SHIM"

func (im itemMeta) encode() []byte {
	b := append([]byte(metaMagic), 1, im.kind)
	b = binary.BigEndian.AppendUint16(b, uint16(len(im.root)))
	return append(b, im.root...)
}

func readMeta(dir string) (itemMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileMeta))
	if err != nil {
		return itemMeta{}, err
	}
	if len(b) < 8 || string(b[:4]) != metaMagic || b[4] != 1 || (b[5] != kindPublished && b[5] != kindDownload) ||
		int(binary.BigEndian.Uint16(b[6:])) != len(b)-8 {
		return itemMeta{}, fmt.Errorf("meta file: %w", ErrBadState)
	}
	return itemMeta{kind: b[5], root: string(b[8:])}, nil
}

func readHave(dir string, id ContentID, m *Manifest) (Bitmap, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileHave))
	if errors.Is(err, fs.ErrNotExist) {
		return NewBitmap(m.NumChunks()), nil
	}
	if err != nil {
		return nil, err
	}
	return decodeBitmapFile(b, id, m.NumChunks())
}

func dataComplete(m *Manifest, have Bitmap) bool {
	for g := range m.NumDataChunks() {
		if !have.Has(m.ChunkOfData(g)) {
			return false
		}
	}
	return true
}
