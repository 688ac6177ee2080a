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
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// apiFile is written to the data folder by a running node so that clients
// find its control API.
type apiFile struct {
	Addr   string `json:"addr"`             // TCP address ("" when off)
	Socket string `json:"socket,omitempty"` // Unix socket path
	PID    int    `json:"pid"`
}

const (
	apiFileName    = "api.json"
	tokenFileName  = "api-token"
	socketFileName = "api.sock"
)

// Client calls a running node's control API. It implements API.
type Client struct {
	base  string
	token string
	http  *http.Client
	first Status // as the node answered Dial
}

// Dial connects to the node that runs on dataDir, through the Unix socket
// inside the folder, and checks that it answers. Only a process that could
// create that socket (the folder is 0700) ever sees the token: a stale
// api.json naming another listener is never used. It returns ErrNoNode when
// no node answers there.
func Dial(ctx context.Context, dataDir string) (*Client, error) {
	sock := filepath.Join(dataDir, socketFileName)
	fi, err := os.Lstat(sock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoNode
	}
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return nil, fmt.Errorf("%w: %s is not a socket", ErrNoNode, sock)
	}
	tok, err := os.ReadFile(filepath.Join(dataDir, tokenFileName))
	if err != nil {
		return nil, fmt.Errorf("reading the API token: %w", err)
	}
	dialPath := sock
	if len(dialPath) > 100 {
		// sun_path holds about 108 bytes; reach a deep folder through
		// /proc/self/fd of a descriptor on it.
		d, err := os.Open(dataDir)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				d.Close()
			}
		}()
		dialPath = fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), socketFileName)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", dialPath)
		},
		MaxIdleConns: 2,
	}
	c := &Client{base: "http://shoal", token: strings.TrimSpace(string(tok)), http: &http.Client{Transport: tr}}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c.first, err = c.Status(pctx); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return nil, err
		}
		return nil, fmt.Errorf("%w (%s does not answer: %v)", ErrNoNode, sock, err)
	}
	return c, nil
}

// Transient reports whether the node that answered Dial was started by a
// command for itself (Config.Transient): it ends with that command.
func (c *Client) Transient() bool { return c.first.Transient }

// DialTCP returns a client for a node's control API on a TCP address (for
// remote control through a tunnel, or scripts), with its token.
func DialTCP(addr, token string) *Client {
	return &Client{base: "http://" + addr, token: token, http: &http.Client{}}
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
		if ctx.Err() != nil {
			return nil, interrupted(ctx)
		}
		return nil, fmt.Errorf("control API: %w", err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e errorBody
		if json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&e) != nil || e.Error == nil {
			return nil, fmt.Errorf("control API: %s", resp.Status)
		}
		return nil, e.Error
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.do(ctx, method, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("control API: %s %s: %w", method, path, err)
	}
	return nil
}

// Status returns the node's summary.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.getJSON(ctx, http.MethodGet, "/v1/status", &s)
}

// Items lists the library.
func (c *Client) Items(ctx context.Context) ([]Item, error) {
	var v []Item
	return v, c.getJSON(ctx, http.MethodGet, "/v1/items", &v)
}

// Identity returns the node's identity.
func (c *Client) Identity(ctx context.Context) (IDInfo, error) {
	var v IDInfo
	return v, c.getJSON(ctx, http.MethodGet, "/v1/id", &v)
}

// Peers lists the peers the node knows.
func (c *Client) Peers(ctx context.Context) ([]PeerInfo, error) {
	var v []PeerInfo
	return v, c.getJSON(ctx, http.MethodGet, "/v1/peers", &v)
}

// Remove takes an item out of the library.
func (c *Client) Remove(ctx context.Context, id string) (Item, error) {
	var it Item
	return it, c.getJSON(ctx, http.MethodDelete, "/v1/items/"+url.PathEscape(id), &it)
}

// Link returns an item's link.
func (c *Client) Link(ctx context.Context, id string) (string, error) {
	var v struct{ Link string }
	return v.Link, c.getJSON(ctx, http.MethodGet, "/v1/items/"+url.PathEscape(id)+"/link", &v)
}

// Publish asks the node to publish req.Path (absolute, on the node's machine).
func (c *Client) Publish(ctx context.Context, req PublishRequest, progress func(Progress)) (Published, error) {
	var res Published
	return res, c.streamCall(ctx, "/v1/publish", req, progress, &res)
}

// Get asks the node to download req.Link into req.Out (absolute).
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(Progress)) (Item, error) {
	var res Item
	return res, c.streamCall(ctx, "/v1/get", req, progress, &res)
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
			return fmt.Errorf("control API sent a bad line: %v", err)
		}
		switch {
		case line.Error != nil:
			return line.Error
		case line.Result != nil:
			return json.Unmarshal(line.Result, res)
		case line.Progress != nil && progress != nil:
			progress(*line.Progress)
		}
	}
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	return errors.New("control API closed the answer before the result")
}

// interrupted is the error of a call whose ctx ended: the node, which saw
// the connection close, keeps what a download verified.
func interrupted(ctx context.Context) error {
	msg := "interrupted"
	if c := context.Cause(ctx); c != nil && !errors.Is(c, ErrInterrupted) && !errors.Is(c, context.Canceled) {
		msg += " (" + c.Error() + ")"
	}
	return Errorf(ErrInterrupted, "%s; what was verified is kept: run the same command again to resume", msg)
}
