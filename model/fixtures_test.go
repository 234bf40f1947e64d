package model

import (
	"testing"

	"github.com/llama2-go/llama2/internal/testfixture"
)

// testdataDir is the repository's testdata folder, filled by `make fixtures`.
var testdataDir = testfixture.Dir

// fixture returns the path of name inside testdata (testfixture.Path).
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	return testfixture.Path(tb, name)
}
