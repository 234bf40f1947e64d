package testfixture

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// Ints reads a golden file of space-separated integers (token ids).
func Ints(tb testing.TB, path string) []int {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []int
	for _, f := range strings.Fields(string(data)) {
		id, err := strconv.Atoi(f)
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		ids = append(ids, id)
	}
	return ids
}
