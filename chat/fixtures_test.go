package chat

import (
	"os"
	"path/filepath"
	"testing"
)

// testdataDir is the repository's testdata folder, filled by `make fixtures`.
const testdataDir = "../testdata"

// fixture returns the path of name inside testdata. A missing fixture skips
// the test on a developer's machine and fails it in CI (CI=true), where a
// suite that silently skips would hide a broken setup.
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(testdataDir, name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("fixture %s is missing (run `make fixtures`): %v", path, err)
		}
		tb.Skipf("fixture %s is missing (run `make fixtures`)", path)
	}
	return path
}
