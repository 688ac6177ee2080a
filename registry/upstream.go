package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// An upstream registry. go-containerregistry's transport does the
// protocol's authentication: the ping of /v2/, Basic, and the Bearer token
// flow Docker Hub uses (token per repository scope, refreshed on 401).
type upstream struct {
	base string // scheme://host
	host string
	reg  name.Registry
	auth authn.Authenticator
	rt   http.RoundTripper // without authentication
	ttl  time.Duration     // how long a repository's transport is kept

	mu  sync.Mutex
	trs map[string]cachedTransport // by repository
}

type cachedTransport struct {
	rt      http.RoundTripper
	expires time.Time
}

// upstreamError is an upstream failure, with what to tell the client.
type upstreamError struct {
	status int // for the client
	code   string
	msg    string
}

func (e *upstreamError) Error() string { return e.msg }

// newUpstream returns the upstream at rawURL. guarded upstreams (chosen by
// a client's ?ns=) refuse to connect to loopback, private and link-local
// addresses, so a client cannot turn the mirror against the node's own
// network.
func (m *Mirror) newUpstream(rawURL string, guarded bool) (*upstream, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("registry: upstream %q: %w", rawURL, err)
	}
	host := u.Host
	if host == "docker.io" || host == "index.docker.io" {
		host = "registry-1.docker.io"
	}
	var opts []name.Option
	if u.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("registry: upstream %q: %w", rawURL, err)
	}
	rt := m.cfg.Transport
	if t, ok := rt.(*http.Transport); ok {
		t = t.Clone()
		t.ResponseHeaderTimeout = m.cfg.UpstreamTimeout
		d := &net.Dialer{Timeout: 10 * time.Second}
		if guarded {
			d.Control = refusePrivate
		}
		t.DialContext = d.DialContext
		rt = t
	}
	return &upstream{
		base: u.Scheme + "://" + host,
		host: host,
		reg:  reg,
		auth: m.auth.authenticator(host),
		rt:   rt,
		ttl:  5 * time.Minute,
		trs:  map[string]cachedTransport{},
	}, nil
}

var errPrivateAddr = errors.New("address not public")

func refusePrivate(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	a := ap.Addr().Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
		return fmt.Errorf("%w: %s", errPrivateAddr, a)
	}
	return nil
}

// upstreamFor returns the upstream named by a client's ?ns= (the default
// one when ns is empty or names its host).
func (m *Mirror) upstreamFor(ns string) (*upstream, error) {
	if ns == "" || ns == m.def.host || ns == m.def.reg.RegistryStr() || (m.def.host == "registry-1.docker.io" && (ns == "docker.io" || ns == "index.docker.io")) {
		return m.def, nil
	}
	u, err := url.Parse("https://" + ns)
	if err != nil || u.Host != ns || u.Path != "" || u.User != nil || strings.ContainsAny(ns, "/?#@") {
		return nil, fmt.Errorf("invalid ns parameter %s: want a registry host[:port]", quote(ns))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if up := m.upstreams[ns]; up != nil {
		return up, nil
	}
	up, err := m.newUpstream("https://"+ns, true)
	if err != nil {
		return nil, fmt.Errorf("invalid ns parameter %s: %v", quote(ns), err)
	}
	if len(m.upstreams) >= maxUpstreams {
		for k := range m.upstreams { // drop any one
			delete(m.upstreams, k)
			break
		}
	}
	m.upstreams[ns] = up
	return up, nil
}

// transport returns an authenticated transport for pulls of repo.
func (up *upstream) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	now := time.Now()
	up.mu.Lock()
	if c, ok := up.trs[repo]; ok && now.Before(c.expires) {
		up.mu.Unlock()
		return c.rt, nil
	}
	up.mu.Unlock()
	scope := "repository:" + repo + ":pull"
	rt, err := transport.NewWithContext(ctx, up.reg, up.auth, up.rt, []string{scope})
	if err != nil {
		return nil, up.classify(err)
	}
	up.mu.Lock()
	if len(up.trs) >= maxTransports {
		for k, c := range up.trs {
			if now.After(c.expires) || len(up.trs) >= maxTransports {
				delete(up.trs, k)
			}
		}
	}
	up.trs[repo] = cachedTransport{rt: rt, expires: now.Add(up.ttl)}
	up.mu.Unlock()
	return rt, nil
}

// classify turns a transport error into what the client is told.
func (up *upstream) classify(err error) *upstreamError {
	var te *transport.Error
	if errors.As(err, &te) {
		return up.statusError(te.StatusCode, err)
	}
	return &upstreamError{status: http.StatusBadGateway, code: codeUnavailable,
		msg: fmt.Sprintf("upstream %s unreachable: %v", up.base, err)}
}

func (up *upstream) statusError(status int, err error) *upstreamError {
	detail := ""
	if err != nil {
		detail = ": " + err.Error()
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return &upstreamError{status: http.StatusForbidden, code: codeDenied,
			msg: fmt.Sprintf("upstream %s refused the pull (%d); check the credentials for %s in the registry_auth file%s", up.base, status, up.host, detail)}
	case http.StatusTooManyRequests:
		return &upstreamError{status: http.StatusTooManyRequests, code: codeTooMany,
			msg: fmt.Sprintf("upstream %s: too many requests%s", up.base, detail)}
	}
	return &upstreamError{status: http.StatusBadGateway, code: codeUnknown,
		msg: fmt.Sprintf("upstream %s answered %d%s", up.base, status, detail)}
}

// get sends a GET of /v2/<repo>/<rest> upstream. A 404 gives (nil,
// errNotFound); another failure an *upstreamError.
func (up *upstream) get(ctx context.Context, repo, rest, accept string) (*http.Response, error) {
	rt, err := up.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, up.base+"/v2/"+repo+"/"+rest, nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, up.classify(err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNotFound
	}
	return nil, up.statusError(resp.StatusCode, transport.CheckError(resp, http.StatusOK))
}

var errNotFound = errors.New("registry: not found upstream")

// authFile holds upstream credentials by registry host.
type authFile map[string]authn.AuthConfig

func loadAuthFile(path string) (authFile, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry: reading credentials: %w", err)
	}
	var f struct {
		Auths map[string]authn.AuthConfig `json:"auths"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("registry: credentials file %s: %v (want {\"auths\": {\"HOST\": {\"username\": ..., \"password\": ...}}})", path, err)
	}
	a := authFile{}
	for k, v := range f.Auths {
		host := k
		if u, err := url.Parse(k); err == nil && u.Host != "" {
			host = u.Host
		}
		if host == "docker.io" || host == "index.docker.io" {
			host = "registry-1.docker.io"
		}
		a[host] = v
	}
	return a, nil
}

func (a authFile) authenticator(host string) authn.Authenticator {
	if c, ok := a[host]; ok {
		return authn.FromConfig(c)
	}
	return authn.Anonymous
}

// The manifest types the mirror asks for when a client names none.
const defaultAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

type manifest struct {
	body      []byte
	mediaType string
	digest    string
	fetched   time.Time
}

// fetchManifest fetches and checks a manifest: against d when asked by
// digest, else against the upstream's Docker-Content-Digest if it sent one.
func (m *Mirror) fetchManifest(ctx context.Context, up *upstream, repo, ref string, d *Digest, accept string) (*manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.UpstreamTimeout)
	defer cancel()
	resp, err := up.get(ctx, repo, "manifests/"+ref, accept)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxManifestSize {
		return nil, &upstreamError{http.StatusBadGateway, codeManifestInvalid, fmt.Sprintf("upstream manifest of %d bytes, over the mirror's %d", resp.ContentLength, maxManifestSize)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	m.m.upstreamBytes.Add(float64(len(body)))
	if err != nil {
		return nil, up.classify(err)
	}
	if len(body) > maxManifestSize {
		return nil, &upstreamError{http.StatusBadGateway, codeManifestInvalid, fmt.Sprintf("upstream manifest over the mirror's %d bytes", maxManifestSize)}
	}
	sum := sha256.Sum256(body)
	got := "sha256:" + hex.EncodeToString(sum[:])
	if d != nil && Digest(sum) != *d {
		return nil, &upstreamError{http.StatusBadGateway, codeManifestInvalid, fmt.Sprintf("upstream sent a manifest with digest %s for %s; not served", got, d)}
	}
	if h := resp.Header.Get("Docker-Content-Digest"); strings.HasPrefix(h, "sha256:") && h != got {
		return nil, &upstreamError{http.StatusBadGateway, codeManifestInvalid, fmt.Sprintf("upstream manifest hashes to %s, not its Docker-Content-Digest %s; not served", got, h)}
	}
	mt := resp.Header.Get("Content-Type")
	if mt == "" || strings.HasPrefix(mt, "text/plain") || mt == "application/octet-stream" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		json.Unmarshal(body, &probe)
		mt = probe.MediaType
	}
	if mt == "" {
		return nil, &upstreamError{http.StatusBadGateway, codeManifestInvalid, "upstream manifest without a media type"}
	}
	return &manifest{body: body, mediaType: mt, digest: got, fetched: time.Now()}, nil
}

// manifestCache keeps manifests by (upstream, repository, reference,
// accept), oldest evicted first.
type manifestCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]*manifest
	order []string
}

func newManifestCache(max int) *manifestCache {
	return &manifestCache{max: max, m: map[string]*manifest{}}
}

// get returns the entry for key fetched less than ttl ago (any age when
// ttl < 0).
func (c *manifestCache) get(key string, ttl time.Duration, now time.Time) *manifest {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[key]
	if e == nil || (ttl >= 0 && now.Sub(e.fetched) >= ttl) {
		return nil
	}
	return e
}

func (c *manifestCache) put(key string, e *manifest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.order = append(c.order, key)
	}
	c.m[key] = e
	for len(c.m) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
}

// serveManifest serves a manifest from the cache or the upstream.
func (m *Mirror) serveManifest(w http.ResponseWriter, r *http.Request, up *upstream, repo, ref string, d *Digest, head bool) {
	accept := strings.Join(r.Header.Values("Accept"), ", ")
	if accept == "" {
		accept = defaultAccept
	}
	key := up.base + " " + repo + " " + ref + " " + accept
	ttl := m.cfg.ManifestTTL
	if d != nil {
		key = up.base + " " + repo + " " + ref
		ttl = -1 // content addressed: good while it stays cached
	}
	result := resultHit
	e := m.manifests.get(key, ttl, time.Now())
	if e == nil {
		var err error
		e, err = m.fetchManifest(r.Context(), up, repo, ref, d, accept)
		if err != nil {
			m.manifestError(w, err, repo, ref)
			return
		}
		m.manifests.put(key, e)
		result = resultUpstream
	}
	m.m.manifestReqs.WithLabelValues(result).Inc()
	h := w.Header()
	h.Set("Content-Type", e.mediaType)
	h.Set("Docker-Content-Digest", e.digest)
	h.Set("Content-Length", fmt.Sprint(len(e.body)))
	h.Set("Etag", `"`+e.digest+`"`)
	if head {
		return
	}
	n, _ := w.Write(e.body)
	m.m.servedBytes.Add(float64(n))
}

func (m *Mirror) manifestError(w http.ResponseWriter, err error, repo, ref string) {
	var ue *upstreamError
	switch {
	case errors.Is(err, errNotFound):
		m.m.manifestReqs.WithLabelValues(resultNotFound).Inc()
		writeError(w, http.StatusNotFound, codeManifestUnknown, fmt.Sprintf("manifest %s:%s unknown to the upstream", repo, ref))
		return
	case errors.As(err, &ue):
		writeError(w, ue.status, ue.code, ue.msg)
	default:
		writeError(w, http.StatusBadGateway, codeUnavailable, "fetching the manifest upstream: "+err.Error())
	}
	m.m.manifestReqs.WithLabelValues(resultError).Inc()
}
