package chunker

import (
	"os"
	"testing"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// TestMain fails the run if any goroutine started by the tests (a download's
// syncer, a publish worker) is still running after them.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m, "shoal/chunker.")) }
