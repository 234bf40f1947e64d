//go:build arm64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// withFlags runs f with cpu.go's arm64 flags set as given, restoring them
// after: the dispatching functions then take the path a CPU with those
// features takes (qemu's default CPU has them all).
func withFlags(t *testing.T, neon, dp bool, f func(t *testing.T)) {
	saveNEON, saveDP := hasNEON, hasASIMDDP
	defer func() { hasNEON, hasASIMDDP = saveNEON, saveDP }()
	hasNEON, hasASIMDDP = neon, dp
	t.Run(fmt.Sprintf("neon=%v/asimddp=%v", neon, dp), f)
}

// TestArm64Dispatch runs the dispatching functions with each combination of
// features and compares them with the plain loops: bit for bit for Q8_0
// and ScaleMul, within dotTol for the float sums.
func TestArm64Dispatch(t *testing.T) {
	t.Logf("neon %v, asimddp %v; implementations %v and %v", hasNEON, hasASIMDDP, implNames(), q8ImplNames())
	require.True(t, hasNEON, "ASIMD is mandatory on arm64")
	r := rand.New(rand.NewPCG(41, 42))
	for _, flags := range [][2]bool{{true, true}, {true, false}, {false, false}} {
		withFlags(t, flags[0], flags[1], func(t *testing.T) {
			checkQ8Dispatch(t, r)
			for _, n := range []int{1, 3, 4, 15, 16, 17, 35, 64, 173} {
				for _, rows := range []int{1, 3, 4, 5, 8, 11} {
					w, x := randSlice(r, rows*n, 1), randSlice(r, n, 3)
					want, got := make([]float32, rows), make([]float32, rows)
					matVecGeneric(want, w, x)
					MatVec(got, w, x)
					for i := range want {
						requireClose(t, want[i], got[i], dotTol(w[i*n:(i+1)*n], x), "n=", n, " rows=", rows, " row=", i)
					}
					requireClose(t, dotGeneric(w[:n], x), Dot(w[:n], x), dotTol(w[:n], x), "dot n=", n)
					s := r.Float32()
					want2, got2 := make([]float32, n), make([]float32, n)
					scaleMulGeneric(want2, w, x, s)
					ScaleMul(got2, w, x, s)
					require.Equal(t, want2, got2, "ScaleMul n=%d", n)
				}
			}
		})
	}
}
