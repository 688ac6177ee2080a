package seed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNoNode is returned by Dial when no node runs on this data folder.
var ErrNoNode = errors.New("seed: no running node")

// apiFile is written to the data folder by a running node so that clients
// find its control API.
type apiFile struct {
	Addr string `json:"addr"`
	PID  int    `json:"pid"`
}

const (
	apiFileName   = "api.json"
	tokenFileName = "api-token"
)

// Client talks to a running node's control API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// Dial finds the node that runs on dataDir and checks that it answers.
// It returns ErrNoNode when none does.
func Dial(ctx context.Context, dataDir string) (*Client, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, apiFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoNode
	}
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	var af apiFile
	if err := json.Unmarshal(b, &af); err != nil || af.Addr == "" {
		return nil, ErrNoNode
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, tokenFileName))
	if err != nil {
		return nil, fmt.Errorf("seed: reading API token: %w", err)
	}
	c := &Client{base: "http://" + af.Addr, token: strings.TrimSpace(string(tok)), http: &http.Client{}}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Status(pctx); err != nil {
		return nil, fmt.Errorf("%w (api.json names %s: %v)", ErrNoNode, af.Addr, err)
	}
	return c, nil
}

func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("seed: control API: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e)
		if resp.StatusCode == http.StatusNotFound && e.Error != "" {
			return nil, fmt.Errorf("%w: %s", ErrNotInLibrary, e.Error)
		}
		return nil, fmt.Errorf("seed: control API: %s: %s", resp.Status, e.Error)
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Status returns the node's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.getJSON(ctx, "/v1/status", &s)
}

// Items lists the library.
func (c *Client) Items(ctx context.Context) ([]Item, error) {
	var v []Item
	return v, c.getJSON(ctx, "/v1/items", &v)
}

// Identity returns the node's identity.
func (c *Client) Identity(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	return v, c.getJSON(ctx, "/v1/id", &v)
}

// Peers lists the peers the node knows.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var v []PeerInfo
	return v, c.getJSON(ctx, "/v1/peers", &v)
}

// Remove takes an item out of the library.
func (c *Client) Remove(ctx context.Context, id string) error {
	resp, err := c.do(ctx, http.MethodDelete, "/v1/items/"+id, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Publish asks the node to publish path (absolute, on the node's machine).
func (c *Client) Publish(ctx context.Context, path string, progress func(Progress)) (Published, error) {
	var res Published
	return res, c.streamCall(ctx, "/v1/publish", publishRequest{Path: path}, progress, &res)
}

// Get asks the node to download link into out (absolute).
func (c *Client) Get(ctx context.Context, link, out string, progress func(Progress)) (Item, error) {
	var res Item
	return res, c.streamCall(ctx, "/v1/get", getRequest{Link: link, Out: out}, progress, &res)
}

func (c *Client) streamCall(ctx context.Context, path string, body any, progress func(Progress), res any) error {
	resp, err := c.do(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line streamLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("seed: control API sent a bad line: %v", err)
		}
		switch {
		case line.Error != "":
			return errors.New(line.Error)
		case line.Result != nil:
			return json.Unmarshal(line.Result, res)
		case line.Progress != nil && progress != nil:
			progress(*line.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("seed: control API: %w", err)
	}
	return errors.New("seed: control API closed the answer before the result")
}
