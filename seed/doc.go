// Package seed is the long-running shoal node: it wires the overlay
// (one UDP socket for QUIC and IPv8 datagrams), discovery, the DHT, the
// swarm's upload and download sides and the chunk store together, keeps a
// library of what it publishes and downloads, and serves a control API.
//
// # Owning
//
// A Node owns its data folder while it runs (an exclusive lock on
// DataDir/lock; a second node on the same folder is refused with
// ErrDataDirBusy). The folder holds:
//
//	key            the node's identity (LibNaCLSK form, mode 0600)
//	library.json   the library: every published or downloaded item
//	store/         per item: manifest, leaf layer, parity chunks, bitmap
//	api-token      the control API's bearer token (mode 0600)
//	api.sock       the control API's Unix socket (the local CLI's way in)
//	api.json       the running node's API addresses and PID (removed on Close)
//	lock           the lock file, holding the PID
//
// Published files stay where they are and are served in place; a file
// edited after publishing is never served as valid (the chunk store checks
// every chunk it reads against its leaf).
//
// A download is written into a hidden folder .shoal-part.<ID> beside its
// output (mode 0700; its device and inode are recorded in the library) and
// renamed to its final name, without replacing anything, only once every
// data chunk is verified and synced. Get returns then; the parity chunks
// the download did not fetch are rebuilt afterwards by the node, one item
// at a time, while it seeds what it holds (parity.go). The store's bitmap
// records each rebuilt chunk once it is on disk, so a node restarted
// during a rebuild offers only the parity it holds and rebuilds the rest.
// A node started for one command (Config.Transient) rebuilds nothing; the
// next node on the folder does. A download that verified nothing leaves
// nothing behind; one that verified something keeps it for a resume, which
// the node starts by itself only for downloads handed to it with
// GetRequest.Background.
//
// # Lifecycle
//
// New builds a node and starts no goroutine: it opens and locks the
// folder, loads the key, opens the store and the library, binds the UDP
// socket and the listeners (the control API's Unix socket and TCP
// address, the gateway, the registry mirror) and seeds the library again
// (without re-hashing: the store keeps manifests, leaves and parity). Run
// starts and owns every goroutine: the overlay, discovery, the DHT and its
// republishing, relays, the servers, announcing the library, resuming
// background downloads, rebuilding parity; it returns once ctx ends (or Close is called) and
// all of them have exited, downloads in flight keeping the chunks they
// verified (they resume on the next Get, or Run for a background one).
// Close stops a running Run, waits for it and releases what New opened.
// Start is New plus Run on a goroutine the node owns, returning once that
// Run serves; Close stops it.
//
// # Caller's duties
//
//   - Call Close exactly once you are done, whether Run ran, returned or
//     never ran (it is idempotent). A node runs once: Run after Run
//     returned, or after Close, fails.
//   - Between New and Run the node answers local calls (Items, Status,
//     Publish; the control API accepts connections, answered once Run
//     serves), but work that needs the network (Get, the DHT announce of
//     Publish) waits for Run. After Run returned, calls fail with ErrClosed.
//   - Progress callbacks passed to Publish and Get run on the node's
//     goroutines, one call at a time: they must not block.
//   - Get blocks until the content is complete, ctx ends, or no byte came
//     for GetRequest.Wait (ErrNoPeers). With no Wait and no peer reachable
//     it waits (peers may come); bound it with ctx.
//
// # One API
//
// API is the node's contract. *Node implements it, NewHandler serves it
// over HTTP (a Unix socket in the data folder, and loopback TCP) and
// *Client calls it, so a caller cannot tell them apart: errors wrap the
// sentinels of errors.go on both sides and carry a stable Code.
// docs/api.md describes the wire form.
package seed
