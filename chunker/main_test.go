package chunker

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// TestMain fails the run if any goroutine started by the tests (a download's
// syncer, a publish worker) is still running after them, and removes the
// publish benchmarks' input file (shared by them, so no one benchmark can).
func TestMain(m *testing.M) {
	code := leakcheck.Main(m, "shoal/chunker.")
	if benchFile.path != "" {
		os.RemoveAll(filepath.Dir(benchFile.path))
	}
	os.Exit(code)
}
