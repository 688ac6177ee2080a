package seed

import (
	"os"
	"testing"

	"github.com/shoal-p2p/shoal/internal/leakcheck"
)

// TestMain fails the run when goroutines outlive the tests: every node a
// test starts must stop all it started.
func TestMain(m *testing.M) { os.Exit(leakcheck.Main(m, "shoal-p2p/shoal/")) }
