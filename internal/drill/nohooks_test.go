package drill

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestShippedBinaryHasNoTestHooks: the shipped shoal binary imports no test
// support (internal/netem, internal/adversary, internal/drill), and no
// SHOAL_TEST_ variable is read outside tests and this package (issue 11).
func TestShippedBinaryHasNoTestHooks(t *testing.T) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Skip("cannot find the module root")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for _, pkg := range []string{"./cmd/shoal", "./seed"} {
		c := exec.Command("go", "list", "-deps", pkg)
		c.Dir = root
		out, err := c.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, bad := range []string{"/internal/netem", "/internal/adversary", "/internal/drill"} {
				if strings.HasPrefix(dep, "github.com/shoal-p2p/shoal"+bad) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." || rel == filepath.Join("internal", "drill") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "SHOAL_TEST_") {
			t.Errorf("%s reads a SHOAL_TEST_ variable outside tests and the drill program", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
