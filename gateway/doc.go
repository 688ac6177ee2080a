// Package gateway serves shoal content over HTTP, read-only, so that
// ordinary tools (curl, browsers, media players) can read it:
//
//	GET|HEAD /shoal/<content-id>            a file's bytes; a folder's listing
//	GET|HEAD /shoal/<content-id>/<path>     one file of a folder (or a
//	                                         sub-folder's listing)
//	?peer=[<peerid>@]host:port               peer hints, as in links
//
// Listings are HTML, or JSON with "Accept: application/json" (path, size and
// mode of every file). Bytes come with Accept-Ranges, Content-Length, an
// ETag from the content ID, a Content-Type from the extension, and honour
// Range (single, multiple and suffix ranges: 206 with Content-Range; 416
// past the end) and If-None-Match (304), through net/http's ServeContent.
//
// The gateway does not hold content itself: a Backend (the node, package
// seed) opens it, from the store if held, or by starting or joining a
// download found through the DHT and the hints. Bytes are read through
// readers that stream each chunk as soon as it is verified, never an
// unverified byte (swarm.Reader for content being downloaded).
//
// Bad input gets a short text body: a malformed ID or hint 400, a path that
// is not in the content 404 (paths are looked up in the manifest, so ".."
// cannot escape), a range past the end 416, content nobody serves 504 after
// Config.FindTimeout, more than Config.MaxReaders requests reading content at
// once 503, and a backend error wrapping ErrUnavailable (the node's cache
// is full of content being read) 503 with Retry-After. A request holds at most one reader (one chunk buffer, its
// read-ahead focused in the download); a read that makes no progress for
// Config.StallTimeout ends the response.
//
// Lifecycle (CONTRACT.md): New opens the listener, Run serves until its
// context ends and returns after every handler exited, Close releases the
// listener if Run never ran.
package gateway
