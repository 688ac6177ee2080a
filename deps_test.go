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
	"overlay":                {"overlay/identity", "internal/udpbatch"},
	"overlay/ipv8":           {"overlay/identity"},
	"overlay/ipv8/discovery": {"overlay/identity", "overlay/ipv8"},
	"dht":                    {"overlay/identity"},
	"swarm":                  {"chunker", "overlay/identity"},
	"swarm/sched":            {},
	"registry":               {"overlay/identity"},
	"internal/cputime":       {},
	"internal/netem":         {},
	"internal/udpbatch":      {},
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
