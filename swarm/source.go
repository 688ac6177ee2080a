package swarm

import (
	"sync"

	"github.com/shoal-p2p/shoal/chunker"
)

// chunkerSource serves a chunker.Item or chunker.Download.
type chunkerSource struct {
	man     *chunker.Manifest
	manEnc  []byte
	leafEnc func() []byte
	has     func(i int) bool
	read    func(i int, buf []byte) ([]byte, error)
}

func (s *chunkerSource) ManifestBytes() []byte { return s.manEnc }
func (s *chunkerSource) LeafBytes() []byte     { return s.leafEnc() }
func (s *chunkerSource) NumChunks() int        { return s.man.NumChunks() }
func (s *chunkerSource) ChunkLen(i int) int    { return s.man.ChunkLen(i) }
func (s *chunkerSource) Has(i int) bool        { return s.has(i) }
func (s *chunkerSource) ReadChunk(i int, buf []byte) ([]byte, error) {
	return s.read(i, buf)
}

// ItemSource serves a published (or finished) item of the store: every
// chunk it holds, data read in place, parity from the store. A finished
// download's item gains parity as chunker.Item.RebuildParity makes it; tell
// open sessions with Server.NotifyHave.
func ItemSource(it *chunker.Item) Source {
	return &chunkerSource{
		man:     it.Manifest(),
		manEnc:  it.ManifestBytes(),
		leafEnc: sync.OnceValue(it.Leaves().Encode),
		has:     it.HasChunk,
		read:    it.ReadChunk,
	}
}

// DownloadSource serves a download in progress: the chunks it has verified
// so far (and every chunk once finished).
func DownloadSource(d *chunker.Download) Source {
	return &chunkerSource{
		man:     d.Manifest(),
		manEnc:  d.ManifestBytes(),
		leafEnc: sync.OnceValue(d.Leaves().Encode),
		has:     d.HasChunk,
		read:    d.ReadChunk,
	}
}
