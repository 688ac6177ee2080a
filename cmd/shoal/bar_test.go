package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shoal-p2p/shoal/seed"
)

// TestBarNeverClaimsMoreThanDone (issue 13 point 2): an aborted operation
// leaves the bar where it stood; only success fills it.
func TestBarNeverClaimsMoreThanDone(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		full bool
	}{{"aborted", errors.New("interrupted"), false}, {"done", nil, true}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			b := &bar{a: &app{stderr: &out}, tty: true, desc: "fetching"}
			b.update(seed.Progress{Stage: seed.StageSearching})
			b.update(seed.Progress{Done: 300, Total: 1000, Stage: seed.StageDownloading})
			if tc.err == nil {
				b.update(seed.Progress{Done: 1000, Total: 1000, Stage: seed.StageDownloading})
			}
			b.end(tc.err)
			if got := strings.Contains(out.String(), "100%"); got != tc.full {
				t.Fatalf("bar output %q: shows 100%% = %v, want %v", out.String(), got, tc.full)
			}
			if !strings.Contains(out.String(), "looking for peers") {
				t.Fatalf("bar output %q lacks the search status", out.String())
			}
		})
	}
}
