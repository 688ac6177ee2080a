package swarm

import (
	"github.com/shoal-p2p/shoal/chunker"
	"github.com/shoal-p2p/shoal/overlay/identity"
)

// SuperSeedRefusalsOf returns how many chunk requests of peer the server's
// super-seeding of id refused (-1 if id is not super-seeded).
func (s *Server) SuperSeedRefusalsOf(id chunker.ContentID, peer identity.PeerID) int {
	s.mu.Lock()
	it := s.items[id]
	s.mu.Unlock()
	if it == nil || it.super == nil {
		return -1
	}
	ss := it.super
	ss.mu.Lock()
	defer ss.mu.Unlock()
	tok, ok := ss.tokens[peer]
	if !ok {
		return 0
	}
	return ss.peers[tok-1].nrefused
}
