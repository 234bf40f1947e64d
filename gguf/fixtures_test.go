package gguf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/llama2-go/llama2/internal/testfixture"
)

// fixture returns the path of name inside testdata (testfixture.Path).
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	return testfixture.Path(tb, name)
}

// readFixture parses testdata/gguf/name.
func readFixture(tb testing.TB, name string) ([]byte, *File) {
	tb.Helper()
	data, err := os.ReadFile(fixture(tb, filepath.Join("gguf", name)))
	if err != nil {
		tb.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		tb.Fatalf("Parse(%s): %v", name, err)
	}
	return data, f
}
