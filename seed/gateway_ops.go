package seed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/swarm"
)

// Reading content without downloading all of it: list a link's files
// (manifest only), stream a file or a range to a writer (cat), fetch only
// some files of a folder (get --only), and control one download (pause,
// resume, cancel, rate limit). docs/gateway.md describes them.

// Errors of these operations; each wraps the sentinel whose code it
// crosses the API with (errors.go).
var (
	ErrNoMatch     = fmt.Errorf("no file matches: %w", ErrNotFound)
	ErrNotAFile    = fmt.Errorf("not a file of the content: %w", ErrNotFound)
	ErrNotActive   = fmt.Errorf("no such download in progress: %w", ErrNotFound)
	ErrOutputExist = fmt.Errorf("output %w", ErrExists)
)

// ListedFile is one file of a listing.
type ListedFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode string `json:"mode"` // "0644" or "0755"
}

// Listing is what a link holds.
type Listing struct {
	ID     string       `json:"id"`
	Name   string       `json:"name"`
	Folder bool         `json:"folder"`
	Size   int64        `json:"size"`
	Files  []ListedFile `json:"files"` // a single file lists itself
}

func listingOf(id chunker.ContentID, m *chunker.Manifest) Listing {
	l := Listing{ID: id.String(), Name: m.Name, Folder: m.Folder, Size: m.Size}
	if !m.Folder {
		l.Files = []ListedFile{{Path: m.Name, Size: m.Size, Mode: "0644"}}
		return l
	}
	for _, f := range m.Files {
		l.Files = append(l.Files, ListedFile{Path: f.Path, Size: f.Size, Mode: fmt.Sprintf("%04o", f.Mode.Perm())})
	}
	return l
}

func parseLinkHints(link string) (chunker.Link, []hint, error) {
	l, err := ParseLink(link) // a link or a bare ID
	if err != nil {
		return l, nil, err
	}
	var hs []hint
	for _, h := range l.Peers {
		hh, err := resolveHint(h)
		if err != nil {
			return l, nil, fmt.Errorf("%w: %v", ErrBadLink, err)
		}
		hs = append(hs, hh)
	}
	return l, hs, nil
}

// List returns the files of link, fetching only its manifest (from the
// link's peers, else the providers the DHT finds) unless the node has it.
// It waits until ctx ends for a peer to answer.
func (n *Node) List(ctx context.Context, link string) (Listing, error) {
	l, hints, err := parseLinkHints(link)
	if err != nil {
		return Listing{}, err
	}
	if m := n.heldManifest(l.ID); m != nil {
		return listingOf(l.ID, m), nil
	}
	m, err := n.fetchManifest(ctx, l.ID, hints)
	if err != nil {
		return Listing{}, err
	}
	return listingOf(l.ID, m), nil
}

// heldManifest returns id's manifest if the node holds or downloads it.
func (n *Node) heldManifest(id chunker.ContentID) *chunker.Manifest {
	n.mu.Lock()
	it, a := n.seeding[id], n.active[id]
	n.mu.Unlock()
	if it != nil {
		return it.Manifest()
	}
	if a != nil {
		if dl := a.download(); dl != nil {
			if c := dl.Chunker(); c != nil {
				return c.Manifest()
			}
		}
	}
	n.gw.mu.Lock()
	d := n.gw.dls[id]
	n.gw.mu.Unlock()
	if d != nil {
		if c := d.dl.Chunker(); c != nil {
			return c.Manifest()
		}
	}
	return nil
}

// fetchManifest asks the hints, then the providers the DHT finds, for the
// manifest of id, one peer at a time, until one answers or ctx ends.
func (n *Node) fetchManifest(ctx context.Context, id chunker.ContentID, hints []hint) (*chunker.Manifest, error) {
	d := swarm.DialerFunc(n.openStream)
	var lastErr error
	try := func(h hint) *chunker.Manifest {
		if h.id == n.PeerID() {
			return nil
		}
		fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m, err := swarm.FetchManifest(fctx, d, h.id, h.addr, id)
		if err != nil {
			lastErr = err
			return nil
		}
		return m
	}
	for _, h := range hints {
		if m := try(h); m != nil {
			return m, nil
		}
	}
	if len(hints) > 0 && n.dht.TableSize() == 0 {
		var addrs []netip.AddrPort
		for _, h := range hints {
			addrs = append(addrs, h.addr)
		}
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n.BootstrapDHT(bctx, addrs)
		cancel()
	}
	wait := 500 * time.Millisecond
	for {
		n.metrics.DHTLookups.Add(1)
		for p := range n.dht.FindProviders(ctx, id) {
			for _, a := range p.Addrs {
				if m := try(hint{id: p.ID, addr: a}); m != nil {
					return m, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("seed: no peer served the manifest of %s: %w (last error: %v)", id, context.Cause(ctx), lastErr)
			}
			return nil, fmt.Errorf("seed: no peer served the manifest of %s: %w", id, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// fileRange finds rel in m: the byte range of a file ("" for a single
// file's content, or its name).
func fileRange(m *chunker.Manifest, rel string) (off, size int64, ok bool) {
	rel = strings.Trim(rel, "/")
	if !m.Folder {
		return 0, m.Size, rel == "" || rel == m.Name
	}
	for _, f := range m.Files {
		if f.Path == rel {
			return off, f.Size, true
		}
		off += f.Size
	}
	return 0, 0, false
}

// CatRequest asks for bytes of a file of a link.
type CatRequest struct {
	Link string `json:"link"`
	Path string `json:"path,omitempty"` // a file of a folder; "" for a single file
	// Offset is the first byte; a negative Offset -N means the last N bytes.
	Offset int64 `json:"offset,omitempty"`
	Length int64 `json:"length,omitempty"` // 0 or less: to the end
}

// Cat writes the bytes req asks for to w as they are verified. The node
// fetches only what the range needs unless it holds or downloads the
// content anyway.
func (n *Node) Cat(ctx context.Context, req CatRequest, w io.Writer) error {
	link, rel, off, length := req.Link, req.Path, req.Offset, req.Length
	l, hints, err := parseLinkHints(link)
	if err != nil {
		return err
	}
	c, err := n.openContent(ctx, l.ID, hints, false)
	if err != nil {
		return err
	}
	defer c.Close()
	foff, size, ok := fileRange(c.m, rel)
	if !ok {
		return fmt.Errorf("%w: %q is not in %s (shoal ls lists it)", ErrNotAFile, rel, l.ID)
	}
	if off < 0 {
		off = max(0, size+off)
	}
	if off > size {
		return fmt.Errorf("seed: offset %d past the end of %d bytes", off, size)
	}
	if length <= 0 || off+length > size {
		length = size - off
	}
	r, err := c.NewReader(foff+off, length, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	if _, err := io.Copy(w, r); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("seed: cat %s: %w", l.ID, err)
	}
	return nil
}

// Selected is the result of GetOnly.
type Selected struct {
	ID    string   `json:"id"`
	Root  string   `json:"root"`  // out/<name>
	Files []string `json:"files"` // written, absolute
	Bytes int64    `json:"bytes"`
}

// matchAny reports whether p matches one of the globs (path.Match against
// the whole path; a glob without "/" also against the file's base name).
func matchAny(globs []string, p string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, p); ok {
			return true
		}
		if !strings.Contains(g, "/") {
			if ok, _ := path.Match(g, path.Base(p)); ok {
				return true
			}
		}
	}
	return false
}

// GetOnlyRequest asks for some files of a folder.
type GetOnlyRequest struct {
	Link string   `json:"link"`
	Out  string   `json:"out"`  // folder (absolute); the files go to out/<name>/<path>
	Only []string `json:"only"` // globs (path.Match) of the files wanted
}

// GetOnly fetches the files of the link's folder that match one of the
// globs, and only the chunks they need, into out/<name>/<path>. Each file
// is written beside its final path and renamed there once complete: no
// file is at its final path unless complete and verified. Existing files
// are not overwritten (ErrOutputExist).
func (n *Node) GetOnly(ctx context.Context, req GetOnlyRequest, progress func(Progress)) (Selected, error) {
	link, out, globs := req.Link, req.Out, req.Only
	if len(globs) == 0 {
		return Selected{}, Errorf(ErrBadRequest, "no pattern: name the files to fetch (shoal ls lists them)")
	}
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil {
			return Selected{}, Errorf(ErrBadRequest, "bad pattern %q", g)
		}
	}
	l, hints, err := parseLinkHints(link)
	if err != nil {
		return Selected{}, err
	}
	if out == "" {
		out = "."
	}
	if out, err = filepath.Abs(out); err != nil {
		return Selected{}, fmt.Errorf("seed: %w", err)
	}
	c, err := n.openContent(ctx, l.ID, hints, false)
	if err != nil {
		return Selected{}, err
	}
	defer c.Close()
	m := c.m
	root := filepath.Join(out, m.Name)
	res := Selected{ID: l.ID.String(), Root: root}
	type pick struct {
		rel       string
		off, size int64
		mode      fs.FileMode
	}
	var picks []pick
	var off int64
	if !m.Folder {
		if matchAny(globs, m.Name) {
			picks = append(picks, pick{"", 0, m.Size, chunker.ModeFile})
		}
	}
	for _, f := range m.Files {
		if matchAny(globs, f.Path) {
			picks = append(picks, pick{f.Path, off, f.Size, f.Mode})
			res.Bytes += f.Size
		}
		off += f.Size
	}
	if !m.Folder && len(picks) > 0 {
		res.Bytes = m.Size
	}
	if len(picks) == 0 {
		return res, fmt.Errorf("%w %s in %s (shoal ls lists its files)", ErrNoMatch, strings.Join(globs, ", "), l.ID)
	}
	var done int64
	for _, p := range picks {
		dst := root
		if p.rel != "" {
			dst = filepath.Join(root, filepath.FromSlash(p.rel))
		}
		if _, err := os.Lstat(dst); err == nil {
			return res, fmt.Errorf("%w: %s (remove it or choose another folder)", ErrOutputExist, dst)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return res, fmt.Errorf("seed: %w", err)
		}
		err := n.writeRange(ctx, c, p.off, p.size, dst, p.mode, func(k int64) {
			if progress != nil {
				progress(Progress{Done: done + k, Total: res.Bytes})
			}
		})
		if err != nil {
			return res, err
		}
		done += p.size
		res.Files = append(res.Files, dst)
	}
	return res, nil
}

// writeRange writes content bytes [off, off+size) to dst through a file
// beside it, renamed once complete.
func (n *Node) writeRange(ctx context.Context, c *nodeContent, off, size int64, dst string, mode fs.FileMode, progress func(int64)) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.shoal-part")
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	r, err := c.NewReader(off, size, 0)
	if err != nil {
		return err
	}
	defer r.Close()
	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	pw := &progressWriter{w: tmp, f: progress}
	if _, err := io.Copy(pw, r); err != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("seed: fetching %s: %w", dst, err)
	}
	if err := tmp.Chmod(mode.Perm()); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

type progressWriter struct {
	w io.Writer
	n int64
	f func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	k, err := p.w.Write(b)
	p.n += int64(k)
	p.f(p.n)
	return k, err
}

// downloadByID finds a download in progress: a get, or the gateway's.
func (n *Node) downloadByID(idText string) (*swarm.Download, *activeDownload, error) {
	id, err := chunker.ParseID(idText)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotActive, err)
	}
	n.mu.Lock()
	a := n.active[id]
	n.mu.Unlock()
	if a != nil {
		if dl := a.download(); dl != nil {
			return dl, a, nil
		}
		return nil, nil, Errorf(ErrBusy, "%s is still starting; try again in a moment", idText)
	}
	n.gw.mu.Lock()
	d := n.gw.dls[id]
	n.gw.mu.Unlock()
	if d != nil {
		return d.dl, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrNotActive, idText)
}

// ControlRequest steers one download in progress.
type ControlRequest struct {
	// Action is "pause" (no new chunk requests; those in flight finish,
	// readers wait), "resume", "cancel" (stop it and forget it) or "rate"
	// (cap it at Rate bytes per second, 0: no cap of its own).
	Action string `json:"action"`
	Rate   int64  `json:"rate,omitempty"`
}

// Control steers the download of id in progress (a get, or the gateway's).
func (n *Node) Control(ctx context.Context, id string, req ControlRequest) error {
	dl, _, err := n.downloadByID(id)
	if err != nil {
		return err
	}
	switch req.Action {
	case "pause":
		dl.Pause()
	case "resume":
		dl.Resume()
	case "rate":
		if req.Rate < 0 {
			return Errorf(ErrBadRequest, "rate %d: want 0 (no cap) or bytes per second", req.Rate)
		}
		dl.SetRateLimit(req.Rate)
	case "cancel":
		return n.cancelDownload(ctx, id)
	default:
		return Errorf(ErrBadRequest, "action %q: want pause, resume, cancel or rate", req.Action)
	}
	return nil
}

// cancelDownload stops a download and forgets it: a get's progress,
// library entry and partial folder (Remove); the gateway's download and
// its cache entry.
func (n *Node) cancelDownload(ctx context.Context, idText string) error {
	_, a, err := n.downloadByID(idText)
	if err != nil {
		return err
	}
	id, err := ParseID(idText)
	if err != nil {
		return err
	}
	if a == nil {
		n.dropGatewayDownload(id)
		return nil
	}
	a.stop(errCancelled)
	<-a.done
	// A download that verified nothing has already left the library.
	if _, err := n.Remove(ctx, id.String()); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

var errCancelled = errors.New("cancelled (shoal cancel)")
