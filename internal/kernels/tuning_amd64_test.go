//go:build amd64 && !purego

package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireGenerated: the row's distances are ones the kernels were
// generated for.
func requireGenerated(t *testing.T, row Tuning) {
	t.Helper()
	require.Contains(t, f32ByPrefetch, row.F32Prefetch, row.Name)
	require.Contains(t, q8ByPrefetch, row.Q8Prefetch, row.Name)
}

// TestResidentPrefetchDistances: the prefetch distance changes no value,
// down to none and past the end of the panels.
func TestResidentPrefetchDistances(t *testing.T) {
	if !ResidentKernels {
		t.Skip("no resident kernels in this build")
	}
	r := rand.New(rand.NewPCG(49, 50))
	for _, rt := range residentTypes {
		const rows, nb = 80, 7
		_, res := residentCase(r, rt.res, rt.bc, rows, nb)
		xq, xs, xsum := randActivation(r, nb*QBlock, 1)
		want := make([]float32, rows)
		rt.res.MatVec(want, res, xq, xs, xsum)
		asm := map[*BlockType]residentKernel{Q8_0Resident: matVecPanelQ8_0VNNI, Q4_0Resident: matVecPanelQ4_0VNNI}[rt.res]
		for _, pf := range []int{0, 64, 256, 1024, 1 << 20} {
			got := make([]float32, rows)
			asm(got, res, xq, xs, xsum, pf)
			require.Equal(t, want, got, "%s pf=%d", rt.bc.name, pf)
		}
	}
	const rows, nsb = 80, 3
	for _, rt := range residentKTypes {
		_, res := residentKCase(r, rt.res, rows, nsb)
		xq, xs, xsum := kqRandActivation(r, nsb*qkK, 1)
		want := make([]float32, rows)
		rt.res.MatVec(want, res, xq, xs, xsum)
		for _, pf := range []int{0, 64, 256, 1024, 1 << 20} {
			got := make([]float32, rows)
			if rt.res == Q4_KResident {
				aux := make([]uint32, 16*nsb)
				kAux(aux, xs, xsum, 1, nsb)
				matVecPanelQ4_KVNNI(got, res, xq, aux, pf)
			} else {
				aux := make([]uint32, 32*nsb)
				q6Aux(aux, xq, xs, xsum, 1, nsb, 1)
				matVecPanelQ6_KVNNI(got, res, xq, aux, pf)
			}
			require.Equal(t, want, got, "%s pf=%d", rt.typ.name, pf)
		}
	}
}
