package kernels

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Which kernels a test run exercised depends on the CPU: an implementation
// whose instructions the CPU lacks is left out of the lists the tests
// iterate (kernelImpls, q8Impls, ...), and the dispatch levels it needs
// (TestAmd64Dispatch) are skipped. TestMain prints one line saying which,
// so that a run on a smaller CPU cannot pass for a full one.

// archImpl is one assembly implementation of this build: its family and
// name as the implementation lists name it, whether the CPU runs it, and
// the features it needs.
type archImpl struct {
	family, name string
	runs         bool
	needs        string
}

// skippedLevels collects the dispatch levels the CPU could not run.
var skippedLevels []string

func TestMain(m *testing.M) {
	impls := archImpls() // before any test changes the feature flags
	code := m.Run()
	fmt.Println(coverageLine(impls, skippedLevels))
	os.Exit(code)
}

// coverageLine says which implementations ran and which were skipped for
// lack of CPU features.
func coverageLine(impls []archImpl, levels []string) string {
	if len(impls) == 0 {
		return "kernels: no assembly in this build (pure Go: purego, or no kernels for " + goarch + ")"
	}
	var ran, skipped []string
	byNeed := map[string][]string{}
	var needs []string
	for _, im := range impls {
		if im.runs {
			ran = append(ran, im.family+"/"+im.name)
			continue
		}
		if _, ok := byNeed[im.needs]; !ok {
			needs = append(needs, im.needs)
		}
		byNeed[im.needs] = append(byNeed[im.needs], im.family+"/"+im.name)
	}
	for _, n := range needs {
		skipped = append(skipped, fmt.Sprintf("%s (no %s)", strings.Join(byNeed[n], " "), n))
	}
	line := "kernels: ran " + strings.Join(ran, " ") + " and the Go twins; skipped for lack of CPU features: "
	if len(skipped) == 0 && len(levels) == 0 {
		return line + "none"
	}
	if len(levels) > 0 {
		skipped = append(skipped, "dispatch levels "+strings.Join(levels, " "))
	}
	return line + strings.Join(skipped, ", ")
}

// TestArchImplsTable: the table coverageLine reads names exactly the
// assembly implementations the lists offer on this CPU, so that it cannot
// fall behind them.
func TestArchImplsTable(t *testing.T) {
	lists := map[string][]string{}
	add := func(family string, names ...string) {
		for _, n := range names {
			if n != "go" {
				lists[family] = append(lists[family], n)
			}
		}
	}
	for _, k := range kernelImpls() {
		add("f32", k.name)
	}
	for _, k := range q8Impls() {
		add("q8", k.name)
	}
	for _, k := range ggufImpls() {
		add("gguf", k.name)
	}
	for _, typ := range kqTypes() {
		for _, k := range typ.impls {
			if typ.name == "Q4_K" {
				add("kquant", k.name)
			}
		}
	}
	for _, k := range quantizeImpls() {
		add("quantize", k.name)
	}
	if ResidentKernels {
		add("resident", "vnni")
	}
	table := map[string][]string{}
	for _, im := range archImpls() {
		if im.runs {
			table[im.family] = append(table[im.family], im.name)
		}
	}
	for _, m := range []map[string][]string{lists, table} {
		for f := range m {
			slices.Sort(m[f])
		}
	}
	require.Equal(t, lists, table)
}

func TestCoverageLine(t *testing.T) {
	impls := []archImpl{
		{"f32", "avx512", false, "AVX-512"}, {"f32", "avx2", true, "AVX2+FMA"},
		{"q8", "vnni", false, "AVX-512 VNNI"}, {"quantize", "avx512", false, "AVX-512"},
	}
	require.Equal(t, "kernels: ran f32/avx2 and the Go twins; skipped for lack of CPU features: "+
		"f32/avx512 quantize/avx512 (no AVX-512), q8/vnni (no AVX-512 VNNI), dispatch levels avx512+vnni avx512",
		coverageLine(impls, []string{"avx512+vnni", "avx512"}))
	require.Equal(t, "kernels: ran f32/avx2 and the Go twins; skipped for lack of CPU features: none",
		coverageLine(impls[1:2], nil))
}
