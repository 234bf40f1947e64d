package kernels

import (
	"testing"

	"github.com/llama2-go/llama2/internal/testfixture"
)

// fixture returns the path of name inside testdata (testfixture.Path).
func fixture(tb testing.TB, name string) string {
	tb.Helper()
	return testfixture.Path(tb, name)
}
