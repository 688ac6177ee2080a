// Command chat is a messaging application on its own IPv8 community, the
// worked example of docs/communities.md. Every -every it sends -say to
// each peer its community's walk found, and prints one JSON line per
// message received:
//
//	{"from":"<public key hex>","text":"..."}
//
// and, when it stops (after -seconds, or on interrupt), one summary line:
//
//	{"peers":[{"public_key":"<hex>","addr":"ip:port"}],"sent":N,"received":M}
//
// Its message is py-ipv8's
//
//	@vp_compile
//	class ChatPayload(VariablePayload):
//	    msg_id = 42
//	    format_list = ["varlenHutf8"]
//	    names = ["text"]
//
// sent signed in py-ipv8's default framing (ez_send), so a py-ipv8
// community that declares it talks with this program.
//
// Usage:
//
//	go run ./examples/chat -listen 127.0.0.1:P -bootstrap 127.0.0.1:Q \
//	    -community HEX40 -say TEXT -every 2s -seconds N
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/shoal-p2p/shoal/overlay"
	"github.com/shoal-p2p/shoal/overlay/ipv8"
	"github.com/shoal-p2p/shoal/overlay/ipv8/community"
)

// chatMessage is message 42: one varlenHutf8 field, signed, no global
// time.
var chatMessage = community.MessageType[string]{
	ID:      42,
	Framing: ipv8.FramingSignedNoTime,
	Encode: func(b []byte, text *string) ([]byte, error) {
		return ipv8.NewFieldWriter(b).VarlenHUTF8(*text).Bytes()
	},
	Decode: func(p []byte) (string, error) {
		r := ipv8.NewFieldReader(p)
		text := r.VarlenHUTF8()
		return text, r.Done()
	},
}

type received struct {
	From string `json:"from"`
	Text string `json:"text"`
}

type peer struct {
	PublicKey string `json:"public_key"`
	Addr      string `json:"addr"`
}

type summary struct {
	Peers    []peer `json:"peers"`
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "UDP `address` to listen on")
	bootstrap := flag.String("bootstrap", "", "comma-separated `addresses` of peers to ask for introductions")
	cid := flag.String("community", "", "community ID, 40 hex digits (required)")
	say := flag.String("say", "", "`text` to send to every peer (none: only listen)")
	every := flag.Duration("every", 2*time.Second, "time between two sends of -say")
	seconds := flag.Int("seconds", 0, "stop after this many seconds (0: run until interrupted)")
	flag.Parse()
	id, err := ipv8.ParseCommunityID(*cid)
	if err != nil {
		return fmt.Errorf("-community: %w", err)
	}
	if *every <= 0 {
		return errors.New("-every must be positive")
	}
	var boot []netip.AddrPort
	for _, s := range strings.Split(*bootstrap, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		a, err := netip.ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("-bootstrap %q: want ip:port: %w", s, err)
		}
		boot = append(boot, a)
	}

	node, err := overlay.New(overlay.Config{ListenAddr: *listen})
	if err != nil {
		return err
	}
	defer node.Close()
	chat, err := community.New(node.Endpoint(), community.Config{ID: id, Walk: walkConfig(boot)})
	if err != nil {
		return err
	}
	out := &printer{enc: json.NewEncoder(os.Stdout)}
	var sent, got atomic.Uint64
	err = community.Handle(chat, chatMessage, func(from community.Sender, text string) {
		got.Add(1)
		out.print(received{From: hex.EncodeToString(from.Key[:]), Text: text})
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *seconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*seconds)*time.Second)
		defer cancel()
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return node.Run(gctx) })
	g.Go(func() error { return chat.Run(gctx) })
	if *say != "" {
		g.Go(func() error {
			t := time.NewTicker(*every)
			defer t.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-t.C:
					n, _ := community.Broadcast(chat, chatMessage, *say)
					sent.Add(uint64(n))
				}
			}
		})
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	s := summary{Peers: []peer{}, Sent: sent.Load(), Received: got.Load()}
	for _, p := range chat.Peers() {
		s.Peers = append(s.Peers, peer{PublicKey: hex.EncodeToString(p.Key[:]), Addr: p.Addr.String()})
	}
	out.print(s)
	return nil
}

// printer writes one JSON value per line; the handler goroutine and the
// final summary share it.
type printer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *printer) print(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(v)
}
