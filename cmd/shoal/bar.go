package main

import (
	"fmt"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shoal-p2p/shoal/seed"
)

// bar shows a byte progress bar on a terminal's standard error, and nothing
// elsewhere. Its total is set once known.
type bar struct {
	show bool
	desc string
	pb   *progressbar.ProgressBar
}

func newBar(want bool, desc string) *bar {
	return &bar{show: want && term.IsTerminal(int(os.Stderr.Fd())), desc: desc}
}

// update moves the bar; called from one goroutine at a time.
func (b *bar) update(p seed.Progress) {
	if !b.show || p.Total <= 0 {
		return
	}
	if b.pb == nil {
		b.pb = progressbar.NewOptions64(p.Total,
			progressbar.OptionSetWriter(os.Stderr),
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

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
		fmt.Fprintln(os.Stderr)
	}
}
