package registry

import (
	"encoding/hex"
	"net/http"
	"regexp"
	"strings"
)

// The distribution spec's grammar of repository names and tags.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	// digestRE is any digest of the spec's grammar; only sha256 is served.
	digestRE = regexp.MustCompile(`^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
)

const maxNameLen = 255

// String is the digest's "sha256:<hex>" form.
func (d Digest) String() string { return "sha256:" + hex.EncodeToString(d[:]) }

// ParseDigest parses "sha256:<64 lowercase hex digits>". ok is false for
// text outside the spec's digest grammar; err is set for a well-formed
// digest of another algorithm or length.
func parseDigest(s string) (Digest, bool) {
	var d Digest
	hexPart, found := strings.CutPrefix(s, "sha256:")
	if !found || len(hexPart) != 64 || strings.ToLower(hexPart) != hexPart {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(hexPart)); err != nil {
		return d, false
	}
	return d, true
}

// handler routes the pull API; everything else answers 404 or 405.
func (m *Mirror) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		path := r.URL.Path
		if path == "/v2" || path == "/v2/" {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, http.StatusMethodNotAllowed, codeUnsupported, "the mirror serves pulls only (GET, HEAD)")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "2")
			if r.Method == http.MethodGet {
				w.Write([]byte("{}"))
			}
			return
		}
		rest, ok := strings.CutPrefix(path, "/v2/")
		if !ok {
			writeError(w, http.StatusNotFound, codeUnsupported, "not a registry API path (want /v2/...)")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, codeUnsupported, "the mirror is read-only: it serves pulls (GET, HEAD)")
			return
		}
		name, kind, ref, ok := splitAPIPath(rest)
		if !ok {
			writeError(w, http.StatusNotFound, codeUnsupported, "unknown registry API path; the mirror serves /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>")
			return
		}
		if len(name) > maxNameLen || !nameRE.MatchString(name) {
			writeError(w, http.StatusBadRequest, codeNameInvalid, "invalid repository name "+quote(name))
			return
		}
		up, err := m.upstreamFor(r.URL.Query().Get("ns"))
		if err != nil {
			writeError(w, http.StatusBadRequest, codeNameInvalid, err.Error())
			return
		}
		head := r.Method == http.MethodHead
		switch kind {
		case "blobs":
			d, ok := parseDigest(ref)
			if !ok {
				msg := "invalid digest " + quote(ref) + ": want sha256:<64 lowercase hex digits>"
				if digestRE.MatchString(ref) {
					msg = "unsupported digest " + quote(ref) + ": the mirror serves sha256 digests only"
				}
				writeError(w, http.StatusBadRequest, codeDigestInvalid, msg)
				m.m.blobRequests.WithLabelValues(resultError).Inc()
				return
			}
			m.serveBlob(w, r, up, name, d, head)
		case "manifests":
			if d, ok := parseDigest(ref); ok {
				m.serveManifest(w, r, up, name, ref, &d, head)
			} else if strings.Contains(ref, ":") || !tagRE.MatchString(ref) {
				writeError(w, http.StatusBadRequest, codeManifestInvalid, "invalid reference "+quote(ref)+": want a tag or sha256:<64 lowercase hex digits>")
			} else {
				m.serveManifest(w, r, up, name, ref, nil, head)
			}
		}
	})
}

// splitAPIPath splits "<name>/manifests/<ref>" or "<name>/blobs/<digest>".
func splitAPIPath(rest string) (name, kind, ref string, ok bool) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return "", "", "", false
	}
	ref = rest[i+1:]
	j := strings.LastIndexByte(rest[:i], '/')
	if j < 0 {
		return "", "", "", false
	}
	kind, name = rest[j+1:i], rest[:j]
	if (kind != "manifests" && kind != "blobs") || name == "" || ref == "" {
		return "", "", "", false
	}
	return name, kind, ref, true
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return `"` + strings.ToValidUTF8(s, "?") + `"`
}

// countingWriter counts the bytes written to a client.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}
