package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm"
)

// partialPrefix starts the name of the hidden folder beside an output that
// holds it until it is complete and verified.
const partialPrefix = ".shoal-part."

// partialDir is the hidden folder in out that holds the unfinished content
// of id (as <partialDir>/<name>).
func partialDir(out string, id chunker.ContentID) string {
	return filepath.Join(out, partialPrefix+id.String())
}

// checkFree fails with ErrExists when something sits at path.
func checkFree(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return Errorf(ErrExists, "%s already exists; shoal does not overwrite: move it away or pick another folder with -o", path)
	}
	return nil
}

// preparePart returns the download's partial library item, its hidden
// folder in place: the one found in the library (moved from the folder of
// an earlier run when j.out differs and the move is a rename), or a new
// one. The folder is made here (mode 0700, so nobody else can plant links
// in it) and its device and inode recorded; a resume checks they are still
// the same.
func (n *Node) preparePart(j job) (Item, error) {
	part := partialDir(j.out, j.id)
	it, had := n.lib.get(j.id.String())
	if had && it.Kind == KindPartial && it.Partial != "" && it.Partial != part {
		if err := n.movePartial(&it, j.out); err != nil {
			return Item{}, err
		}
	}
	if had && it.Kind == KindPartial && it.Partial == part {
		err := checkDirIdentity(part, it.PartialDev, it.PartialIno)
		if err == nil && !onlyFilesAndDirs(part) {
			// Something that is neither a file nor a folder (a planted
			// symlink, say) sits among the outputs: trust none of it.
			n.log.Warn("partial download tampered with; starting over", "content", j.id, "path", part)
			err = fs.ErrNotExist
		}
		if err == nil {
			it.Background = j.background
			return it, n.lib.put(it)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return Item{}, err
		}
		n.log.Info("partial download gone; starting over", "content", j.id, "path", part)
	}
	// Start afresh: nothing of an earlier attempt is trusted.
	n.store.Remove(j.id)
	_, statErr := os.Stat(j.out)
	if err := os.MkdirAll(j.out, 0o755); err != nil {
		return Item{}, fmt.Errorf("cannot create %s: %w", j.out, errors.Unwrap(err))
	}
	if fi, err := os.Lstat(part); err == nil {
		if fi.IsDir() {
			os.RemoveAll(part)
		} else {
			os.Remove(part)
		}
	}
	if err := os.Mkdir(part, 0o700); err != nil {
		return Item{}, fmt.Errorf("cannot write in %s: %w", j.out, errors.Unwrap(err))
	}
	dev, ino, err := dirIdentity(part)
	if err != nil {
		return Item{}, err
	}
	it = Item{
		ID: j.id.String(), Name: j.name, Kind: KindPartial, Path: filepath.Join(j.out, j.name),
		Added: time.Now().UTC().Truncate(time.Second), Partial: part, PartialDev: dev, PartialIno: ino,
		Background: j.background, madeOut: statErr != nil,
	}
	if err := n.lib.put(it); err != nil {
		os.Remove(part)
		return Item{}, err
	}
	return it, nil
}

// movePartial moves a partial download's hidden folder into out, or
// refuses, naming where it is.
func (n *Node) movePartial(it *Item, out string) error {
	id, _ := chunker.ParseID(it.ID)
	to := partialDir(out, id)
	refuse := func(why string) error {
		return Errorf(ErrExists, "an unfinished download of %s is in %s (%s); run the same command with -o %s to resume it, or 'shoal rm %s' to start over",
			it.Name, filepath.Dir(it.Partial), why, filepath.Dir(it.Partial), it.ID)
	}
	if err := checkDirIdentity(it.Partial, it.PartialDev, it.PartialIno); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			it.Partial = "" // gone: start over in out
			return nil
		}
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", out, errors.Unwrap(err))
	}
	if _, err := os.Lstat(to); err == nil {
		return refuse(to + " is in the way")
	}
	if err := os.Rename(it.Partial, to); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return refuse("another file system: it cannot be moved by a rename")
		}
		return refuse(err.Error())
	}
	syncDir(out)
	syncDir(filepath.Dir(it.Partial))
	if it.Name != "" {
		if err := n.store.MoveOutput(id, filepath.Join(to, it.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	n.log.Info("partial download moved", "content", it.ID, "from", it.Partial, "to", to)
	it.Partial = to
	it.Path = filepath.Join(out, it.Name)
	return n.lib.put(*it)
}

// install moves a complete, verified download from its hidden folder to
// its final name, without replacing anything there, records the new place
// in the store and the library, and seeds it.
func (n *Node) install(ctx context.Context, it Item, dl *swarm.Download) (Item, error) {
	id, _ := chunker.ParseID(it.ID)
	m := dlManifest(dl)
	if err := dl.Close(); err != nil { // syncs the output and the bitmap
		return it, fmt.Errorf("finishing: %w", err)
	}
	src := filepath.Join(it.Partial, m.Name)
	dst := filepath.Join(filepath.Dir(it.Path), m.Name)
	if err := renameNoReplace(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return it, Errorf(ErrExists, "%s already exists; shoal does not overwrite: move it away and run the same command again", dst)
		}
		return it, fmt.Errorf("moving into place: %w", err)
	}
	syncDir(filepath.Dir(dst))
	if err := testHookInstall("renamed"); err != nil {
		return it, err
	}
	if err := n.store.MoveOutput(id, dst); err != nil {
		return it, err
	}
	if err := testHookInstall("moved"); err != nil {
		return it, err
	}
	os.Remove(it.Partial)
	it.Kind, it.Path, it.Partial, it.PartialDev, it.PartialIno, it.Background = KindDownloaded, dst, "", 0, 0, false
	if err := n.lib.put(it); err != nil {
		return it, err
	}
	if err := n.seed(id); err != nil {
		return it, err
	}
	return it, nil
}

// testHookInstall, set by tests, fails install after a step ("renamed":
// the output is at its final path; "moved": the store knows it), as a
// crash there would leave it.
var testHookInstall = func(step string) error { return nil }

// recoverInstalled finishes the library's record of a download that was
// interrupted (a crash, a full disk) after its output was renamed to its
// final path: the library still says partial, but the partial folder no
// longer holds the output and the final path does. If the store says the
// download was complete and the file there matches the leaf layer, the
// item is recorded as downloaded (the caller seeds it); otherwise nothing
// changes. It reports whether it recovered the item.
func (n *Node) recoverInstalled(it *Item) bool {
	if it.Kind != KindPartial || it.Path == "" || it.Partial == "" {
		return false
	}
	id, err := chunker.ParseID(it.ID)
	if err != nil {
		return false
	}
	info, err := n.store.Info(id)
	if err != nil || !info.Download || !info.Complete {
		return false
	}
	// The library's Path is out/<name from the link>, or out itself when
	// the link named nothing; the output went to out/<manifest's name>.
	out := it.Path
	if it.Name != "" {
		out = filepath.Dir(it.Path)
	}
	name := info.Manifest.Name
	final := filepath.Join(out, name)
	if _, err := os.Lstat(filepath.Join(it.Partial, name)); !errors.Is(err, fs.ErrNotExist) {
		return false // the output is still in the partial folder: a resume
	}
	if _, err := os.Lstat(final); err != nil {
		return false
	}
	if info.Root != final {
		if err := n.store.MoveOutput(id, final); err != nil {
			return false
		}
	}
	held, err := n.store.Open(id)
	if err == nil {
		err = verifyTree(held.Manifest(), held.Leaves(), final)
		held.Close()
	}
	if err != nil {
		n.log.Warn("an interrupted download's output does not match its content; left as it is", "content", it.ID, "path", final, "err", err)
		if info.Root != final {
			n.store.MoveOutput(id, info.Root)
		}
		return false
	}
	if checkDirIdentity(it.Partial, it.PartialDev, it.PartialIno) == nil {
		os.RemoveAll(it.Partial) // ours, and no longer holds the output
	}
	done := *it
	done.Name, done.Path, done.Size = name, final, info.Manifest.Size
	done.Kind, done.Partial, done.PartialDev, done.PartialIno, done.Background = KindDownloaded, "", 0, 0, false
	if err := n.lib.put(done); err != nil {
		n.log.Warn("recording a finished download", "content", it.ID, "err", err)
		return false
	}
	*it = done
	n.log.Info("download finished before an interruption; recorded and seeded", "content", it.ID, "path", it.Path)
	return true
}

// abandon ends a failed download. What it verified is kept for a resume
// when it verified anything (or the node was asked to keep trying);
// otherwise it leaves nothing behind: no library item, no store entry, no
// folder.
func (n *Node) abandon(it Item, dl *swarm.Download, cause error) (Item, error) {
	id, _ := chunker.ParseID(it.ID)
	var p swarm.Progress
	if dl != nil {
		p = dl.Progress()
	}
	if p.Verified > 0 || it.Background || errors.Is(cause, ErrClosed) {
		n.lib.put(it)
		n.log.Info("download stopped", "content", it.ID, "name", it.Name, "done", p.Verified, "total", p.Size, "err", cause)
		if errors.Is(cause, ErrExists) {
			return it, cause
		}
		return it, fmt.Errorf("%w (%s of %s verified and kept: run the same command again to resume)", cause, FormatSize(p.Verified), FormatSize(p.Size))
	}
	n.store.Remove(id)
	os.RemoveAll(it.Partial)
	if it.madeOut {
		os.Remove(filepath.Dir(it.Partial)) // only if still empty
	}
	n.lib.remove(it.ID)
	n.log.Info("download failed", "content", it.ID, "name", it.Name, "err", cause)
	return Item{}, cause
}

// copyHeld puts a copy of a held item at out/<name>: a reflink where the
// file system makes one, else a copy; checked against the leaf layer before
// it is renamed into place.
func (n *Node) copyHeld(ctx context.Context, it Item, out string) (Item, error) {
	id, _ := chunker.ParseID(it.ID)
	dst := filepath.Join(out, it.Name)
	if err := checkFree(dst); err != nil {
		return Item{}, err
	}
	held, err := n.store.Open(id)
	if err != nil {
		return Item{}, err
	}
	defer held.Close()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return Item{}, fmt.Errorf("cannot create %s: %w", out, errors.Unwrap(err))
	}
	part := partialDir(out, id)
	if err := os.Mkdir(part, 0o700); err != nil {
		return Item{}, fmt.Errorf("cannot write in %s: %w", out, errors.Unwrap(err))
	}
	defer os.RemoveAll(part)
	tmp := filepath.Join(part, it.Name)
	if err := copyTree(ctx, it.Path, tmp); err != nil {
		return Item{}, fmt.Errorf("copying %s: %w", it.Path, err)
	}
	if err := verifyTree(held.Manifest(), held.Leaves(), tmp); err != nil {
		return Item{}, fmt.Errorf("copy of %s: %w (the held files changed; 'shoal rm %s' and get it again)", it.Path, err, it.ID)
	}
	if err := renameNoReplace(tmp, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Item{}, Errorf(ErrExists, "%s already exists; shoal does not overwrite", dst)
		}
		return Item{}, err
	}
	syncDir(out)
	n.log.Info("copied held content", "content", it.ID, "path", dst)
	cp := it
	cp.Path = dst
	return cp, nil
}

// copyTree copies the file or folder src to dst, file by file (reflinked
// where possible), each synced.
func copyTree(ctx context.Context, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.Mkdir(to, 0o755)
		}
		info, err := d.Info()
		if err == nil && d.Type()&fs.ModeSymlink != 0 {
			info, err = os.Stat(p) // published with --follow-symlinks
		}
		if err != nil || !info.Mode().IsRegular() {
			return nil // not part of the content (verifyTree checks)
		}
		return copyFile(p, to, info.Mode().Perm())
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if !reflink(out, in) {
		if _, err := io.Copy(out, in); err != nil { // copy_file_range where it can
			out.Close()
			return err
		}
	}
	return errors.Join(out.Chmod(mode), out.Sync(), out.Close())
}

// verifyTree hashes the data chunks of the content at root (laid out as m
// says) against the leaf layer.
func verifyTree(m *chunker.Manifest, leaves *chunker.LeafLayer, root string) error {
	var files []string
	if !m.Folder {
		files = []string{root}
	} else {
		for _, f := range m.Files {
			files = append(files, filepath.Join(root, filepath.FromSlash(f.Path)))
		}
	}
	var readers []io.Reader
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		readers = append(readers, f)
	}
	r := io.MultiReader(readers...)
	buf := make([]byte, m.ChunkSize)
	for i := 0; i < m.NumChunks(); i++ {
		if m.DataChunkOffset(i) < 0 {
			continue
		}
		b := buf[:m.ChunkLen(i)]
		if _, err := io.ReadFull(r, b); err != nil {
			return fmt.Errorf("chunk %d: %w", i, err)
		}
		if chunker.HashChunk(b) != leaves.Hash(i) {
			return fmt.Errorf("chunk %d: %w", i, chunker.ErrModified)
		}
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// onlyFilesAndDirs reports whether the tree at root holds nothing but
// regular files and folders (no symlinks, devices or sockets).
func onlyFilesAndDirs(root string) bool {
	ok := true
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || (!d.IsDir() && !d.Type().IsRegular()) {
			ok = false
			return filepath.SkipAll
		}
		return nil
	})
	return ok
}
