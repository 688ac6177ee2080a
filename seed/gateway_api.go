package seed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Control API endpoints for reading and steering content (docs/api.md):
//
//	POST /v1/ls                      {"link"}                -> Listing
//	POST /v1/cat                     CatRequest              -> raw bytes
//	POST /v1/select                  GetOnlyRequest          -> ndjson progress, Selected
//	POST /v1/downloads/{id}          ControlRequest          -> 204

type lsRequest struct {
	Link string `json:"link"`
}

// readRoutes adds the endpoints above to NewHandler's mux.
func readRoutes(mux *http.ServeMux, api API) {
	mux.HandleFunc("POST /v1/ls", func(w http.ResponseWriter, r *http.Request) {
		var req lsRequest
		if !readJSON(w, r, &req) {
			return
		}
		l, err := api.List(r.Context(), req.Link)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	})
	mux.HandleFunc("POST /v1/cat", func(w http.ResponseWriter, r *http.Request) {
		var req CatRequest
		if !readJSON(w, r, &req) {
			return
		}
		// Errors before the first byte get a status; a failure later cuts
		// the response, which the client reports as an error.
		cw := &catWriter{w: w}
		err := api.Cat(r.Context(), req, cw)
		if err != nil && !cw.started {
			writeError(w, err)
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
		var req GetOnlyRequest
		if readJSON(w, r, &req) {
			stream(w, func(progress func(Progress)) (any, error) { return api.GetOnly(r.Context(), req, progress) })
		}
	})
	mux.HandleFunc("POST /v1/downloads/{id}", func(w http.ResponseWriter, r *http.Request) {
		var req ControlRequest
		if !readJSON(w, r, &req) {
			return
		}
		if err := api.Control(r.Context(), r.PathValue("id"), req); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
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

// Cat writes the bytes req asks for to w as the node verifies them.
func (c *Client) Cat(ctx context.Context, req CatRequest, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/cat", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("seed: cat: the node stopped sending: %w", err)
	}
	return nil
}

// GetOnly asks the node to fetch only the files of a folder matching the
// request's globs.
func (c *Client) GetOnly(ctx context.Context, req GetOnlyRequest, progress func(Progress)) (Selected, error) {
	var res Selected
	return res, c.streamCall(ctx, "/v1/select", req, progress, &res)
}

// Control steers a download in progress on the node.
func (c *Client) Control(ctx context.Context, id string, req ControlRequest) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/downloads/"+url.PathEscape(id), req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
