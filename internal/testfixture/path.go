// Package testfixture finds the test fixtures that `make fixtures` copies
// into the repository's testdata folder, for the tests of every package.
package testfixture

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir is the repository's testdata folder.
var Dir = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}()

// Path returns the path of name inside testdata. A missing fixture skips
// the test on a developer's machine and fails it in CI (CI=true), where a
// suite that silently skips would hide a broken setup.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	path := filepath.Join(Dir, name)
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("fixture %s is missing (run `make fixtures`): %v", path, err)
		}
		tb.Skipf("fixture %s is missing (run `make fixtures`)", path)
	}
	return path
}
