package seed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Control API endpoints for reading and steering content (docs/api.md):
//
//	POST /v1/ls                      {"link"}            -> Listing
//	POST /v1/cat                     {"link","path","offset","length"} -> raw bytes
//	POST /v1/select                  {"link","out","only":[...]} -> ndjson progress, Selected
//	POST /v1/downloads/{id}/pause    -> 204
//	POST /v1/downloads/{id}/resume   -> 204
//	POST /v1/downloads/{id}/cancel   -> 204
//	POST /v1/downloads/{id}/rate     {"rate": bytes/s, 0 none} -> 204

// readBackend is what these endpoints need; *Node implements it.
type readBackend interface {
	List(ctx context.Context, link string) (Listing, error)
	Cat(ctx context.Context, link, rel string, off, length int64, w io.Writer) error
	GetOnly(ctx context.Context, link, out string, globs []string, progress func(Progress)) (Selected, error)
	PauseDownload(id string) error
	ResumeDownload(id string) error
	CancelDownload(id string) error
	SetDownloadRate(id string, bytesPerSec int64) error
}

type lsRequest struct {
	Link string `json:"link"`
}

type catRequest struct {
	Link   string `json:"link"`
	Path   string `json:"path,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Length int64  `json:"length,omitempty"` // 0 or less: to the end
}

type selectRequest struct {
	Link string   `json:"link"`
	Out  string   `json:"out"`
	Only []string `json:"only"`
}

type rateRequest struct {
	Rate int64 `json:"rate"`
}

// readErrorCode maps an operation's error to an HTTP status.
func readErrorCode(err error) int {
	switch {
	case errors.Is(err, ErrNotActive), errors.Is(err, ErrNotAFile), errors.Is(err, ErrNoMatch):
		return http.StatusNotFound
	case errors.Is(err, ErrBadLink):
		return http.StatusBadRequest
	case errors.Is(err, ErrOutputExist):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func registerReadAPI(mux *http.ServeMux, b backend) {
	rb, ok := b.(readBackend)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/ls", func(w http.ResponseWriter, r *http.Request) {
		var req lsRequest
		if !readJSON(w, r, &req) {
			return
		}
		l, err := rb.List(r.Context(), req.Link)
		if err != nil {
			writeError(w, readErrorCode(err), err)
			return
		}
		writeJSON(w, l)
	})
	mux.HandleFunc("POST /v1/cat", func(w http.ResponseWriter, r *http.Request) {
		var req catRequest
		if !readJSON(w, r, &req) {
			return
		}
		length := req.Length
		if length <= 0 {
			length = -1
		}
		// Errors before the first byte get a status; a failure later cuts
		// the response, which the client reports as an error.
		cw := &catWriter{w: w}
		err := rb.Cat(r.Context(), req.Link, req.Path, req.Offset, length, cw)
		if err != nil && !cw.started {
			writeError(w, readErrorCode(err), err)
			return
		}
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		if !cw.started {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusOK)
		}
	})
	mux.HandleFunc("POST /v1/select", func(w http.ResponseWriter, r *http.Request) {
		var req selectRequest
		if !readJSON(w, r, &req) {
			return
		}
		stream(w, func(progress func(Progress)) (any, error) {
			return rb.GetOnly(r.Context(), req.Link, req.Out, req.Only, progress)
		})
	})
	control := func(f func(string) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := f(r.PathValue("id")); err != nil {
				writeError(w, readErrorCode(err), err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /v1/downloads/{id}/pause", control(rb.PauseDownload))
	mux.HandleFunc("POST /v1/downloads/{id}/resume", control(rb.ResumeDownload))
	mux.HandleFunc("POST /v1/downloads/{id}/cancel", control(rb.CancelDownload))
	mux.HandleFunc("POST /v1/downloads/{id}/rate", func(w http.ResponseWriter, r *http.Request) {
		var req rateRequest
		if !readJSON(w, r, &req) {
			return
		}
		control(func(id string) error { return rb.SetDownloadRate(id, req.Rate) })(w, r)
	})
}

// catWriter sends the status line with the first bytes and flushes each
// write, so bytes reach the client as they are verified.
type catWriter struct {
	w       http.ResponseWriter
	started bool
}

func (c *catWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.started = true
		c.w.Header().Set("Content-Type", "application/octet-stream")
		c.w.WriteHeader(http.StatusOK)
	}
	n, err := c.w.Write(p)
	http.NewResponseController(c.w).Flush()
	return n, err
}

// List lists link's files (the node fetches only the manifest).
func (c *Client) List(ctx context.Context, link string) (Listing, error) {
	var l Listing
	resp, err := c.do(ctx, http.MethodPost, "/v1/ls", lsRequest{Link: link})
	if err != nil {
		return l, err
	}
	defer resp.Body.Close()
	return l, json.NewDecoder(resp.Body).Decode(&l)
}

// Cat writes bytes of link's file rel to w as the node verifies them
// (length < 0: to the end).
func (c *Client) Cat(ctx context.Context, link, rel string, off, length int64, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/cat", catRequest{Link: link, Path: rel, Offset: off, Length: max(length, 0)})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("seed: cat: the node stopped sending: %w", err)
	}
	return nil
}

// GetOnly asks the node to fetch only the files of link matching globs.
func (c *Client) GetOnly(ctx context.Context, link, out string, globs []string, progress func(Progress)) (Selected, error) {
	var res Selected
	return res, c.streamCall(ctx, "/v1/select", selectRequest{Link: link, Out: out, Only: globs}, progress, &res)
}

func (c *Client) control(ctx context.Context, id, op string, body any) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/downloads/"+url.PathEscape(id)+"/"+op, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PauseDownload pauses a download in progress.
func (c *Client) PauseDownload(ctx context.Context, id string) error {
	return c.control(ctx, id, "pause", nil)
}

// ResumeDownload resumes a paused download.
func (c *Client) ResumeDownload(ctx context.Context, id string) error {
	return c.control(ctx, id, "resume", nil)
}

// CancelDownload stops and forgets a download in progress.
func (c *Client) CancelDownload(ctx context.Context, id string) error {
	return c.control(ctx, id, "cancel", nil)
}

// SetDownloadRate caps one download (0: no cap of its own).
func (c *Client) SetDownloadRate(ctx context.Context, id string, bytesPerSec int64) error {
	return c.control(ctx, id, "rate", rateRequest{Rate: bytesPerSec})
}
