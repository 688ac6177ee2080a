package shoal_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/shoal-p2p/shoal"

// allowed lists, for each of our packages, the other packages of ours it may
// import (directly or not). Sub-packages inherit their parent's row unless
// listed. See docs/architecture.md.
var allowed = map[string][]string{
	"chunker":                {},
	"overlay/identity":       {},
	"ratelimit":              {},
	"overlay":                {"overlay/identity", "ratelimit"},
	"overlay/ipv8":           {"overlay/identity", "ratelimit"},
	"overlay/relay":          {"overlay/identity", "ratelimit"},
	"overlay/ipv8/discovery": {"overlay/identity", "overlay/ipv8", "ratelimit"},
	"overlay/ipv8/community": {"overlay/identity", "overlay/ipv8", "overlay/ipv8/discovery", "ratelimit"},
	"dht":                    {"overlay/identity", "ratelimit"},
	"swarm":                  {"chunker", "overlay/identity"},
	"swarm/sched":            {},
	"gateway":                {"chunker"},
	"registry":               {"overlay/identity"},
	"internal/cputime":       {},
	"internal/netem":         {},
}

// rowFor returns the row of the table that governs pkg, and whether any does.
func rowFor(pkg string) ([]string, string, bool) {
	for p := pkg; p != "."; {
		if row, ok := allowed[p]; ok {
			return row, p, true
		}
		i := strings.LastIndex(p, "/")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return nil, "", false
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		row, owner, ok := rowFor(pkg)
		if !ok {
			continue // seed, cmd and internal may import anything
		}
		for _, dep := range fields[1:] {
			if !strings.HasPrefix(dep, module+"/") {
				continue
			}
			d := strings.TrimPrefix(dep, module+"/")
			if d == owner || strings.HasPrefix(d, owner+"/") {
				continue // a package may use its own sub-packages
			}
			okDep := false
			for _, a := range row {
				if d == a || strings.HasPrefix(d, a+"/") {
					okDep = true
				}
			}
			if !okDep {
				t.Errorf("%s imports %s, which docs/architecture.md forbids", pkg, d)
			}
		}
	}
}

// production reports whether pkg ships in the shoal binary or in a library a
// user imports: everything but top-level internal/ (test and simulation
// support), the benchmark programs bench and cmd/shoal-bench, and the
// overlaytest packages.
func production(pkg string) bool {
	switch {
	case pkg == "internal" || strings.HasPrefix(pkg, "internal/"):
		return false
	case pkg == "bench" || strings.HasPrefix(pkg, "bench/"):
		return false
	case pkg == "cmd/shoal-bench" || strings.HasPrefix(pkg, "cmd/shoal-bench/"):
		return false
	case strings.HasSuffix(pkg, "overlaytest") || strings.Contains(pkg, "overlaytest/"):
		return false
	}
	return true
}

// TestNoInternalInProduction: production code never imports top-level
// internal/ (test and simulation support); production I/O helpers live
// under their owner (overlay/internal/udpbatch). Test files are not in
// go list's Deps, so tests may import internal/.
func TestNoInternalInProduction(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		if !production(pkg) {
			continue
		}
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, module+"/internal/") {
				t.Errorf("production package %s imports %s; top-level internal/ is for tests and simulation only", pkg, strings.TrimPrefix(dep, module+"/"))
			}
		}
	}
}
