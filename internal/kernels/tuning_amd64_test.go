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

// TestResidentPrefetchDistances: the resident matrix-vector kernels give
// the same values, bit for bit, reading the panels apart or in order (the
// per-CPU table's choice), at every prefetch distance, down to none and
// past the end of the panels.
func TestResidentPrefetchDistances(t *testing.T) {
	if !ResidentKernels {
		t.Skip("no resident kernels in this build")
	}
	r := rand.New(rand.NewPCG(49, 50))
	pfs := []int{0, 64, 256, 1024, 1 << 20}
	for _, row := range tunings { // and every distance the table chooses
		pfs = append(pfs, row.Q8_0Panels.Prefetch, row.Q4_0Panels.Prefetch, row.KPanels.Prefetch, row.BatchPrefetch)
	}
	for _, rows := range []int{16, 80, 176} { // 1 panel; 4 apart and 1; 8 apart and 3
		for _, rt := range residentTypes {
			const nb = 7
			_, res := residentCase(r, rt.res, rt.bc, rows, nb)
			xq, xs, xsum := randActivation(r, nb*QBlock, 1)
			want := make([]float32, rows)
			rt.res.MatVec(want, res, xq, xs, xsum)
			variants := map[*BlockType][2]residentKernel{
				Q8_0Resident: {matVecPanelQ8_0VNNI, matVecPanelQ8_0SeqVNNI},
				Q4_0Resident: {matVecPanelQ4_0VNNI, matVecPanelQ4_0SeqVNNI},
			}[rt.res]
			for i, asm := range variants {
				for _, pf := range pfs {
					got := make([]float32, rows)
					asm(got, res, xq, xs, xsum, pf)
					require.Equal(t, want, got, "%s rows=%d in order=%v pf=%d", rt.bc.name, rows, i == 1, pf)
				}
			}
			// The panel kernels for a batch (BatchPrefetch), each group
			// size against MatVec, at every distance.
			l := map[*BlockType]*residentLayout{Q8_0Resident: residentQ8_0, Q4_0Resident: residentQ4_0}[rt.res]
			for V, panel := range residentPanelKernels[l] {
				if panel == nil {
					continue
				}
				n := nb * QBlock
				bq, bs, bsum := randActivation(r, n, V)
				var sc panelScratch
				xsT, xcT := sc.transposeScales(bs, bsum, V, nb, l.c)
				want := make([]float32, rows*V)
				for v := range V {
					rt.res.MatVec(want[v*rows:(v+1)*rows], res, bq[v*n:(v+1)*n], bs[v*nb:(v+1)*nb], bsum[v*nb:(v+1)*nb])
				}
				for _, pf := range pfs {
					got := make([]float32, rows*V)
					pb := len(res) / (rows / ResidentRows)
					for r0 := 0; r0 < rows; r0 += ResidentRows {
						panel(got[r0:], rows, res[r0/ResidentRows*pb:], bq, xsT, xcT, n, pf)
					}
					require.Equal(t, want, got, "%s rows=%d %d vectors pf=%d", rt.bc.name, rows, V, pf)
				}
			}
		}
		for _, rt := range residentKTypes {
			const nsb = 3
			_, res := residentKCase(r, rt.res, rows, nsb)
			xq, xs, xsum := kqRandActivation(r, nsb*qkK, 1)
			want := make([]float32, rows)
			rt.res.MatVec(want, res, xq, xs, xsum)
			k := map[*BlockType]*kResident{Q4_KResident: kResQ4_K, Q5_KResident: kResQ5_K, Q6_KResident: kResQ6_K}[rt.res]
			aux := make([]uint32, k.auxDwords*nsb)
			k.aux(aux, xq, xs, xsum, 1, nsb)
			for i, asm := range []func([]float32, []byte, []int8, []uint32, int){k.vec, k.vecSeq} {
				for _, pf := range pfs {
					got := make([]float32, rows)
					asm(got, res, xq, aux, pf)
					require.Equal(t, want, got, "%s rows=%d in order=%v pf=%d", rt.typ.name, rows, i == 1, pf)
				}
			}
			// The panel kernels for a batch (BatchPrefetch): every
			// group size, each panel against its vectors as matMat
			// takes them, the same values at every distance.
			for V, panel := range k.panel {
				if panel == nil {
					continue
				}
				n := nsb * qkK
				bq, bs, bsum := kqRandActivation(r, n, V)
				baux := make([]uint32, k.auxDwords*V*nsb)
				k.aux(baux, bq, bs, bsum, V, nsb)
				want := make([]float32, rows*V)
				for v := range V {
					rt.res.MatVec(want[v*rows:(v+1)*rows], res, bq[v*n:(v+1)*n], bs[v*nsb*8:(v+1)*nsb*8], bsum[v*nsb*8:(v+1)*nsb*8])
				}
				for _, pf := range pfs {
					got := make([]float32, rows*V)
					pb := len(res) / (rows / ResidentRows)
					for r0 := 0; r0 < rows; r0 += ResidentRows {
						panel(got[r0:], rows, res[r0/ResidentRows*pb:], bq, baux, n, pf)
					}
					require.Equal(t, want, got, "%s rows=%d %d vectors pf=%d", rt.typ.name, rows, V, pf)
				}
			}
		}
	}
}

// TestSum16: q6Aux's byte-lane sum equals the loop of additions, at the
// extremes and at random, at every offset.
func TestSum16(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := make([]int8, 64)
	for trial := range 200 {
		for i := range x {
			switch trial {
			case 0:
				x[i] = -128
			case 1:
				x[i] = 127
			default:
				x[i] = int8(r.IntN(256) - 128)
			}
		}
		for off := range 48 {
			var want int32
			for _, q := range x[off : off+16] {
				want += int32(q)
			}
			require.Equal(t, want, sum16(x[off:]), "trial %d offset %d", trial, off)
		}
	}
}
