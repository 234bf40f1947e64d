//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// featureLevel is a set of cpu.go's amd64 flags: a CPU the dispatching
// functions know.
type featureLevel struct {
	name                     string
	avx2, avx512, vnni, vbmi bool
}

// featureLevels go from the fullest CPU down: AVX-512 with VNNI and VBMI
// (Zen 4, Ice Lake), without VBMI (Cascade Lake: Q4_0 drops to AVX2), without
// VNNI (Skylake-SP: the int8 kernels drop to AVX2), AVX2 only (Haswell to
// Zen 3), none (the Go twins).
var featureLevels = []featureLevel{
	{"avx512+vnni+vbmi", true, true, true, true},
	{"avx512+vnni", true, true, true, false},
	{"avx512", true, true, false, false},
	{"avx2", true, false, false, false},
	{"none", false, false, false, false},
}

// withFeatures runs f with the flags set to lv, restoring them after, and
// with dispatchOnly: the dispatching functions then take the path a CPU
// with those features takes. It reports false (and records the level)
// when the CPU lacks one of lv's features.
func withFeatures(t *testing.T, lv featureLevel, f func(t *testing.T)) bool {
	if lv.avx2 && !hasAVX2FMA || lv.avx512 && !hasAVX512 || lv.vnni && !hasVNNI || lv.vbmi && !hasVBMI {
		skippedLevels = append(skippedLevels, lv.name)
		return false
	}
	save := [...]bool{hasAVX2FMA, hasAVX512, hasVNNI, hasVBMI, dispatchOnly}
	defer func() {
		hasAVX2FMA, hasAVX512, hasVNNI, hasVBMI, dispatchOnly = save[0], save[1], save[2], save[3], save[4]
	}()
	hasAVX2FMA, hasAVX512, hasVNNI, hasVBMI, dispatchOnly = lv.avx2, lv.avx512, lv.vnni, lv.vbmi, true
	t.Run(lv.name, f)
	return true
}

// TestAmd64Dispatch runs the tests of the dispatching functions at every
// feature level this CPU can stand in for, so that an AVX-512 machine
// also runs the paths an AVX2 machine takes (each switch's lower cases,
// the AVX2 drivers of the block types, MatMatQ8Tiles's refusal without
// VNNI), against the same references and tolerances as the
// implementations.
func TestAmd64Dispatch(t *testing.T) {
	if raceEnabled {
		t.Skip("single-goroutine sweeps: the plain run (make test-go) covers them")
	}
	tests := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"Dot", TestDot}, {"Axpy", TestAxpy}, {"ScaleMul", TestScaleMul}, {"MatVec", TestMatVec},
		{"MatMat", TestMatMat}, {"SiluMul", TestSiluMul}, {"ExpSubSum", TestExpSubSum}, {"Maxf", TestMaxf},
		{"DivScalar", TestDivScalar}, {"DotStrided", TestDotStrided}, {"AxpyStrided", TestAxpyStrided},
		{"MatVecHalfGGUF", TestMatVecHalfGGUF}, {"MatMatHalfGGUF", TestMatMatHalfGGUF},
		{"MatVecBlocksGGUF", TestMatVecBlocksGGUF}, {"MatMatBlocksGGUF", TestMatMatBlocksGGUF},
		{"MatVecKQuant", TestMatVecKQuant}, {"MatMatKQuant", TestMatMatKQuant},
		{"Q8", testDispatchQ8}, {"Quantize", testDispatchQuantize},
	}
	for _, lv := range featureLevels[1:] { // the first is the CPU's own: the plain run
		withFeatures(t, lv, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, tc.f)
			}
		})
	}
}

// testDispatchQ8 checks MatVecQ8 and MatMatQ8Tiles (llama2.c's Q8_0)
// against the plain loop, bit for bit; without VNNI the tiles are refused.
func testDispatchQ8(t *testing.T) {
	tiled := checkQ8Dispatch(t, rand.New(rand.NewPCG(51, 52)))
	if hasVNNI != (tiled > 0) {
		t.Fatalf("MatMatQ8Tiles computed %d vectors with VNNI %v", tiled, hasVNNI)
	}
}

// testDispatchQuantize checks the activations' quantization (the
// dispatching quantizeGroups) against quantizeRef, bit for bit.
func testDispatchQuantize(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, n := range []int{1, 31, 32, 100, 256, 1000} {
		for _, gs := range quantizeGroupSizes(n) {
			x := randSlice(r, n, 0)
			wantQ, wantS, wantSums := quantizeRef(x, gs)
			q, s, sums := make([]int8, n), make([]float32, len(wantS)), make([]int32, len(wantSums))
			if gs%QBlock != 0 || n%QBlock != 0 {
				sums = nil
			}
			if !quantizeGroups(q, s, sums, x, gs) {
				t.Fatalf("n=%d gs=%d: finite input reported not finite", n, gs)
			}
			for i := range q {
				if q[i] != wantQ[i] {
					t.Fatalf("n=%d gs=%d: q[%d] = %d, want %d", n, gs, i, q[i], wantQ[i])
				}
			}
			requireBits(t, wantS, s, fmt.Sprintf("scales n=%d gs=%d", n, gs))
			for i := range sums {
				if sums[i] != wantSums[i] {
					t.Fatalf("n=%d gs=%d: sums[%d] = %d, want %d", n, gs, i, sums[i], wantSums[i])
				}
			}
		}
	}
}

// requireBits fails unless got is want bit for bit.
func requireBits(t *testing.T, want, got []float32, msg string) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: [%d] = %v, want %v", msg, i, got[i], want[i])
		}
	}
}
