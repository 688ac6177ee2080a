package main

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shoal-p2p/shoal/seed"
)

// bar shows progress on standard error: a byte bar once the total is known
// and, before that, a status line saying what the node does to find peers.
// On a terminal the line is redrawn; elsewhere each new status is one line.
// It shows nothing with --json. It never claims more than was done: an
// aborted operation leaves the bar where it stood.
type bar struct {
	a    *app
	tty  bool
	desc string

	mu       sync.Mutex
	pb       *progressbar.ProgressBar
	lastLine string
	drawn    bool
}

func newBar(a *app, desc string) *bar {
	f, ok := a.stderr.(*os.File)
	return &bar{a: a, tty: ok && term.IsTerminal(int(f.Fd())), desc: desc}
}

// update shows p; safe from any goroutine.
func (b *bar) update(p seed.Progress) {
	if b.a.json {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.Total <= 0 || p.Stage == seed.StageSearching {
		b.status(searchLine(p))
		return
	}
	if !b.tty {
		return
	}
	if b.pb == nil {
		b.clearLine()
		b.pb = progressbar.NewOptions64(p.Total,
			progressbar.OptionSetWriter(b.a.stderr),
			progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100_000_000),
			progressbar.OptionUseIECUnits(true),
		)
	}
	if p.Peers > 0 {
		b.pb.Describe(fmt.Sprintf("%s from %d peers", b.desc, p.Peers))
	}
	b.pb.Set64(p.Done)
}

// searchLine says what the search for peers has done.
func searchLine(p seed.Progress) string {
	if p.Stage != seed.StageSearching {
		return ""
	}
	parts := []string{"looking for peers"}
	if p.Note != "" {
		parts = append(parts, p.Note)
	}
	if p.Lookups > 0 {
		if p.DHTNodes == 0 {
			parts = append(parts, "the DHT knows no nodes (no bootstrap peer answered)")
		} else {
			parts = append(parts, fmt.Sprintf("%d DHT nodes known, %d providers found", p.DHTNodes, p.Providers))
		}
	}
	return strings.Join(parts, ": ")
}

func (b *bar) status(line string) {
	if line == "" || line == b.lastLine {
		return
	}
	b.lastLine = line
	if b.tty {
		fmt.Fprintf(b.a.stderr, "\r\x1b[2K%s", line)
		b.drawn = true
		return
	}
	fmt.Fprintln(b.a.stderr, line)
}

func (b *bar) clearLine() {
	if b.drawn {
		fmt.Fprint(b.a.stderr, "\r\x1b[2K")
		b.drawn = false
	}
}

// end closes the display: full only when the operation succeeded.
func (b *bar) end(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLine()
	if b.pb == nil {
		return
	}
	if err == nil {
		b.pb.Finish()
	} else {
		b.pb.Exit() // stays where it stood
	}
	fmt.Fprintln(b.a.stderr)
}
