package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-p2p/shoal/chunker"
)

// serve answers GET and HEAD /shoal/{id}[/{path...}].
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	id, err := chunker.ParseID(r.PathValue("id"))
	if err != nil {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("bad content ID %q: %v", r.PathValue("id"), err))
		return
	}
	var hints []chunker.PeerHint
	for _, h := range r.URL.Query()["peer"] {
		ph, err := chunker.ParsePeerHint(h)
		if err != nil {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("bad peer hint %q: %v", h, err))
			return
		}
		if len(hints) == chunker.MaxLinkPeers {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("more than %d peer hints", chunker.MaxLinkPeers))
			return
		}
		hints = append(hints, ph)
	}
	rel, ok := cleanPath(r.PathValue("path"))
	if !ok {
		httpError(w, http.StatusNotFound, "not found: the path is not in the content")
		return
	}
	select {
	case g.slots <- struct{}{}:
		defer func() { <-g.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many readers (%d at once); retry later", g.cfg.MaxReaders))
		return
	}

	octx, cancel := context.WithTimeoutCause(r.Context(), g.cfg.FindTimeout, errFindTimeout)
	c, err := g.cfg.Backend.Open(octx, id, hints)
	cancel()
	if err != nil {
		switch {
		case errors.Is(err, ErrBadRequest):
			httpError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, ErrUnavailable):
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
			httpError(w, http.StatusServiceUnavailable, err.Error())
		case errors.Is(err, errFindTimeout):
			httpError(w, http.StatusGatewayTimeout, fmt.Sprintf("no peer served %s within %v; try again later, or add ?peer=host:port", id, g.cfg.FindTimeout))
		case r.Context().Err() != nil:
			// The client went away.
		default:
			g.cfg.Logger.Info("gateway open failed", "content", id.String(), "err", err)
			httpError(w, http.StatusBadGateway, fmt.Sprintf("cannot open %s: %v", id, err))
		}
		return
	}
	defer c.Close()
	m := c.Manifest()
	f, dir, ok := lookup(m, rel)
	if !ok {
		httpError(w, http.StatusNotFound, fmt.Sprintf("not found: %q is not in %s", rel, id))
		return
	}
	w.Header().Set("Vary", "Accept")
	if dir {
		g.serveListing(w, r, id, m, rel)
		return
	}
	g.serveFile(w, r, id, c, f, rel)
}

var errFindTimeout = errors.New("gateway: content not found in time")

// cleanPath checks a request's path inside the content: "/"-separated
// components, none empty, "." or "..". A trailing slash is allowed.
func cleanPath(p string) (string, bool) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", true
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || strings.ContainsRune(c, 0) {
			return "", false
		}
	}
	return p, true
}

// file is a byte range of the content: one file of a folder, or all of a
// single file.
type file struct {
	off, size int64
	name      string
}

// lookup finds rel in m: a file (its range), or a folder prefix (dir).
func lookup(m *chunker.Manifest, rel string) (f file, dir bool, ok bool) {
	if !m.Folder {
		if rel == "" || rel == m.Name {
			return file{0, m.Size, m.Name}, false, true
		}
		return f, false, false
	}
	if rel == "" {
		return f, true, true
	}
	var off int64
	for _, e := range m.Files {
		if e.Path == rel {
			return file{off, e.Size, path.Base(e.Path)}, false, true
		}
		off += e.Size
	}
	prefix := rel + "/"
	for _, e := range m.Files {
		if strings.HasPrefix(e.Path, prefix) {
			return f, true, true
		}
	}
	return f, false, false
}

// serveFile sends a file's bytes, with ranges, through ServeContent.
func (g *Gateway) serveFile(w http.ResponseWriter, r *http.Request, id chunker.ContentID, c Content, f file, rel string) {
	h := w.Header()
	h.Set("ETag", etag(id, rel, ""))
	ct := mime.TypeByExtension(path.Ext(f.name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	rs := &lazyReader{c: c, base: f.off, size: f.size, limit: rangeEnd(r.Header.Get("Range"), f.size),
		readAhead: g.cfg.ReadAhead, stall: g.cfg.StallTimeout}
	defer rs.Close()
	// A client that goes away releases its reader (and its priority) at
	// once, even while a Read waits for a chunk.
	stop := context.AfterFunc(r.Context(), func() { rs.Close() })
	defer stop()
	// Content never changes under its ID: no Last-Modified, the ETag
	// decides If-None-Match.
	http.ServeContent(flushWriter{w}, r, "", time.Time{}, rs)
}

// etag is a strong ETag from the content ID (and the path inside it).
func etag(id chunker.ContentID, rel, variant string) string {
	s := id.String()
	if rel != "" {
		s += "/" + url.PathEscape(rel)
	}
	if variant != "" {
		s += "." + variant
	}
	return `"` + s + `"`
}

// flushWriter flushes after every write, so that each verified chunk
// reaches the client at once instead of waiting in a buffer.
type flushWriter struct{ http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	if err == nil {
		http.NewResponseController(f.ResponseWriter).Flush()
	}
	return n, err
}

// WriteHeader sends the headers at once: a client learns the length and
// type before the first chunk is verified.
func (f flushWriter) WriteHeader(code int) {
	f.ResponseWriter.WriteHeader(code)
	http.NewResponseController(f.ResponseWriter).Flush()
}

func (f flushWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// lazyReader is the io.ReadSeeker ServeContent wants: seeking is free, the
// first Read after a seek opens a reader at that position (so HEAD and
// 304 answers read nothing). A read that makes no progress for stall fails.
type lazyReader struct {
	c               Content
	base, size, pos int64
	limit           int64 // readers stop here: the end of a single range
	readAhead       int64
	stall           time.Duration

	mu     sync.Mutex // Close may come from the request's context
	rd     io.ReadCloser
	closed bool
}

// rangeEnd returns where a single "bytes=a-b" range ends (exclusive), so
// that a reader asks for no chunk past it; size for anything else.
func rangeEnd(h string, size int64) int64 {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return size
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok || a == "" || b == "" {
		return size
	}
	end, err := strconv.ParseInt(b, 10, 64)
	if err != nil || end < 0 || end >= size {
		return size
	}
	return end + 1
}

func (l *lazyReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += l.pos
	case io.SeekEnd:
		off += l.size
	default:
		return 0, errors.New("gateway: bad whence")
	}
	if off < 0 {
		return 0, errors.New("gateway: seek before the start")
	}
	l.mu.Lock()
	if off != l.pos && l.rd != nil {
		l.rd.Close()
		l.rd = nil
	}
	l.mu.Unlock()
	l.pos = off
	return off, nil
}

func (l *lazyReader) Read(p []byte) (int, error) {
	if l.pos >= l.size {
		return 0, io.EOF
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, errReaderClosed
	}
	if l.rd == nil {
		end := l.size
		if l.limit > l.pos && l.limit < end {
			end = l.limit
		}
		rd, err := l.c.NewReader(l.base+l.pos, end-l.pos, l.readAhead)
		if err != nil {
			l.mu.Unlock()
			return 0, err
		}
		l.rd = rd
	}
	rd := l.rd
	l.mu.Unlock()
	t := time.AfterFunc(l.stall, func() { rd.Close() })
	n, err := rd.Read(p)
	t.Stop()
	l.pos += int64(n)
	if err == io.EOF && l.pos < l.size {
		// The reader stopped at the range's end; a later read (another
		// range) opens a new one.
		l.mu.Lock()
		if l.rd == rd {
			l.rd = nil
		}
		l.mu.Unlock()
		rd.Close()
		err = nil
	}
	return n, err
}

var errReaderClosed = errors.New("gateway: reader closed")

func (l *lazyReader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.rd != nil {
		l.rd.Close()
		l.rd = nil
	}
	return nil
}

// entry is one file of a listing.
type entry struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode string `json:"mode"` // octal permission bits: "0644" or "0755"
}

type listing struct {
	ID    string  `json:"id"`
	Name  string  `json:"name"`
	Path  string  `json:"path,omitempty"` // the sub-folder listed; "" for all
	Size  int64   `json:"size"`
	Files []entry `json:"files"`
}

// serveListing answers a folder (or sub-folder) with its files, as JSON if
// the client accepts it, else HTML.
func (g *Gateway) serveListing(w http.ResponseWriter, r *http.Request, id chunker.ContentID, m *chunker.Manifest, rel string) {
	l := listing{ID: id.String(), Name: m.Name, Path: rel, Files: []entry{}}
	for _, e := range m.Files {
		if rel != "" && !strings.HasPrefix(e.Path, rel+"/") {
			continue
		}
		l.Files = append(l.Files, entry{Path: e.Path, Size: e.Size, Mode: fmt.Sprintf("%04o", e.Mode.Perm()&fs.ModePerm)})
		l.Size += e.Size
	}
	asJSON := wantsJSON(r.Header.Get("Accept"))
	variant := "html"
	if asJSON {
		variant = "json"
	}
	tag := etag(id, rel, variant)
	w.Header().Set("ETag", tag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	var body []byte
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		body, _ = json.Marshal(l)
		body = append(body, '\n')
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		var b strings.Builder
		listHTML.Execute(&b, htmlListing{listing: l, Base: "/shoal/" + id.String() + "/"})
		body = []byte(b.String())
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func wantsJSON(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return true
		}
	}
	return false
}

func etagMatch(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

type htmlListing struct {
	listing
	Base string
}

// Href is the link to a file of the listing.
func (h htmlListing) Href(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return h.Base + strings.Join(parts, "/")
}

var listHTML = template.Must(template.New("list").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Name}}{{if .Path}}/{{.Path}}{{end}}</title></head>
<body><h1>{{.Name}}{{if .Path}}/{{.Path}}{{end}}</h1>
<p>{{len .Files}} files, {{.Size}} bytes. Content ID <code>{{.ID}}</code>.</p>
<table><thead><tr><th>path</th><th>size</th><th>mode</th></tr></thead><tbody>
{{range .Files}}<tr><td><a href="{{$.Href .Path}}">{{.Path}}</a></td><td>{{.Size}}</td><td>{{.Mode}}</td></tr>
{{end}}</tbody></table></body></html>
`))
