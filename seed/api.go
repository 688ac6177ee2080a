package seed

import (
	"context"
	"encoding/json"
	"io"
	"time"
)

// API is the node's one contract: *Node implements it in-process, the
// control API serves it over HTTP (NewHandler) and *Client calls it
// remotely, so a command behaves, fails and exits the same way whether or
// not a node runs. Errors wrap the sentinels in errors.go on both sides
// (Code gives their stable code). docs/api.md describes the wire form.
//
// Adding an operation: a method here, its *Node implementation, one route
// in NewHandler's table and one *Client method.
type API interface {
	Status(ctx context.Context) (Status, error)
	Items(ctx context.Context) ([]Item, error)
	Identity(ctx context.Context) (IDInfo, error)
	Peers(ctx context.Context) ([]PeerInfo, error)
	// Remove takes an item (ID or link) out of the library and returns it.
	Remove(ctx context.Context, id string) (Item, error)
	// Link returns an item's link (ID or link in, with this node as a hint).
	Link(ctx context.Context, id string) (string, error)
	Publish(ctx context.Context, req PublishRequest, progress func(Progress)) (Published, error)
	Get(ctx context.Context, req GetRequest, progress func(Progress)) (Item, error)

	// Reading and steering content (gateway_ops.go): List fetches only a
	// link's manifest; Cat writes a file or a byte range to w as chunks
	// are verified; GetOnly fetches some files of a folder and only their
	// chunks; Control pauses, resumes, cancels or caps a download.
	List(ctx context.Context, link string) (Listing, error)
	Cat(ctx context.Context, req CatRequest, w io.Writer) error
	GetOnly(ctx context.Context, req GetOnlyRequest, progress func(Progress)) (Selected, error)
	Control(ctx context.Context, id string, req ControlRequest) error
}

var (
	_ API = (*Node)(nil)
	_ API = (*Client)(nil)
)

// PublishRequest asks the node to publish a file or folder.
type PublishRequest struct {
	Path string `json:"path"` // absolute, on the node's machine
	// FollowSymlinks publishes what symlinks in a folder point to; by
	// default they are skipped with a warning (Published.Skipped).
	FollowSymlinks bool `json:"follow_symlinks,omitempty"`
}

// GetRequest asks the node to download a link.
type GetRequest struct {
	Link string `json:"link"` // a link, "shoal:sh1...", or a bare "sh1..." ID
	Out  string `json:"out"`  // folder to put the content in (absolute); "" means the node's working folder
	// Wait gives up with ErrNoPeers when no byte arrived for this long
	// (0: wait until ctx ends). Progress is kept when some arrived.
	Wait Duration `json:"wait_seconds,omitempty"`
	// Background returns at once and keeps downloading on the node, across
	// restarts, until done or removed; Status lists it.
	Background bool `json:"background,omitempty"`
}

// Duration is a time.Duration that crosses JSON as seconds (a number).
type Duration time.Duration

// MarshalJSON writes seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Seconds())
}

// UnmarshalJSON reads seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s float64
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*d = Duration(s * float64(time.Second))
	return nil
}

// Stages of a download, as Progress.Stage reports them.
const (
	StageSearching   = "searching"   // looking for peers and the metadata
	StageDownloading = "downloading" // fetching chunks
	StageFinishing   = "finishing"   // moving into place (parity is rebuilt after: Item.Parity)
)

// Progress is one progress report of a long operation.
type Progress struct {
	Done  int64  `json:"done"`            // bytes done
	Total int64  `json:"total"`           // bytes in all (0: not known yet)
	Peers int    `json:"peers,omitempty"` // peers serving a download
	Rate  int64  `json:"rate,omitempty"`  // bytes per second, recent
	Stage string `json:"stage,omitempty"` // a download's Stage...
	// While searching: what the node is doing to find peers.
	DHTNodes  int    `json:"dht_nodes,omitempty"`   // nodes in the DHT routing table
	Providers int    `json:"providers,omitempty"`   // providers found so far
	Note      string `json:"note,omitempty"`        // e.g. "hinted peer 192.0.2.7:7745 does not answer"
	Lookups   int    `json:"dht_lookups,omitempty"` // DHT lookups done
}

// Status is the node's summary.
type Status struct {
	PeerID        string `json:"peer_id"`
	Listen        string `json:"listen"`
	TCP           bool   `json:"tcp"`     // the node also listens on TCP at Listen (chunk streams)
	API           string `json:"api"`     // TCP address of the control API ("" when off)
	Gateway       string `json:"gateway"` // TCP address of the HTTP gateway ("" when off)
	Peers         int    `json:"peers"`
	Items         int    `json:"items"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	BytesUp       int64  `json:"bytes_up"`
	BytesDown     int64  `json:"bytes_down"` // including downloads in progress
	Active        int    `json:"active_downloads"`
	// ParityRebuilds counts the downloaded items whose parity the node
	// is rebuilding or will rebuild next (Item.Parity).
	ParityRebuilds int  `json:"parity_rebuilds,omitempty"`
	Transient      bool `json:"transient,omitempty"` // started by a command, ends with it
	// Connected lists the peers with an open connection and its path
	// (direct, lan or relayed).
	Connected []PeerInfo `json:"connected,omitempty"`
	// Downloads lists the downloads in progress.
	Downloads []DownloadStatus `json:"downloads,omitempty"`
}

// DownloadStatus is the state of one download in progress.
type DownloadStatus struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Stage      string  `json:"stage"`
	Done       int64   `json:"done"`     // content bytes verified
	Received   int64   `json:"received"` // chunk bytes received (parity included)
	Total      int64   `json:"total"`    // 0 until the manifest is known
	Peers      int     `json:"peers"`
	Rate       int64   `json:"rate"`                  // bytes per second, recent
	ETASeconds float64 `json:"eta_seconds,omitempty"` // 0: unknown
	Rejected   int     `json:"rejected_chunks"`
	Banned     int     `json:"banned_peers"`
	Background bool    `json:"background,omitempty"`
}

// PeerInfo describes one known peer.
type PeerInfo struct {
	PeerID string `json:"peer_id"`
	Addr   string `json:"addr"`
	// Path is how the open connection to the peer runs: PathDirect,
	// PathLAN or PathRelayed; "" when none is open.
	Path string `json:"path,omitempty"`
	// Conn is the remote address of the open connection, if any.
	Conn string `json:"conn,omitempty"`
}

// The paths of PeerInfo.
const (
	PathDirect  = "direct"  // to the peer's public (or only) address
	PathLAN     = "lan"     // to its address on a network this node is on
	PathRelayed = "relayed" // through a relay peer, end-to-end encrypted
)

// IDInfo describes the node's identity.
type IDInfo struct {
	PeerID    string `json:"peer_id"`
	PublicKey string `json:"public_key"` // hex of the 74-byte LibNaCLPK key
	Mid       string `json:"mid"`        // IPv8's SHA-1 peer ID, hex
	Listen    string `json:"listen"`
}

// Published is the result of a publish.
type Published struct {
	Item    Item     `json:"item"`
	Link    string   `json:"link"`
	Skipped []string `json:"skipped,omitempty"` // symlinks left out, relative paths
}
