//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMatVecRowsApart checks that the float32 matrix-vector kernels give
// each row the same value whichever rows it is computed with: in one call
// they take rows i, q+i, 2q+i and 3q+i together (q = rows/4), then the last
// rows%4 one at a time, and row by row every row takes the one-row path.
// Their Steps twins must give the quarters' rows the same values piece by
// piece.
// The threads of a forward pass and batched decoding call them on
// different row ranges, and a sequence must get the same logits in both.
func TestMatVecRowsApart(t *testing.T) {
	kernels := map[string]func(out, w, x []float32){}
	steps := map[string]func(out, w, x []float32, q, steps int){}
	if hasAVX512 {
		kernels["avx512"] = func(out, w, x []float32) { matVec4AVX512(out, w, x, kbAVX512(len(x))) }
		steps["avx512"] = func(out, w, x []float32, q, steps int) { matVec4StepsAVX512(out, w, x, kbAVX512(len(x)), q, steps) }
		// The variant without prefetches (the per-CPU table's choice on Zen 4).
		kernels["avx512p0"] = func(out, w, x []float32) { matVec4AVX512P0(out, w, x, kbAVX512(len(x))) }
		steps["avx512p0"] = func(out, w, x []float32, q, steps int) { matVec4StepsAVX512P0(out, w, x, kbAVX512(len(x)), q, steps) }
	}
	if hasAVX2FMA {
		kernels["avx2"] = func(out, w, x []float32) { matVec4AVX2(out, w, x, kbAVX2(len(x))) }
		steps["avx2"] = func(out, w, x []float32, q, steps int) { matVec4StepsAVX2(out, w, x, kbAVX2(len(x)), q, steps) }
	}
	if len(kernels) == 0 {
		t.Skip("no AVX2+FMA on this CPU")
	}
	r := rand.New(rand.NewPCG(29, 30))
	for name, kernel := range kernels {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 31, 33, 47, 64, 129, 288, 2049} {
			for _, rows := range []int{1, 3, 4, 5, 9, 35} {
				msg := fmt.Sprintf("%s n=%d rows=%d", name, n, rows)
				w := randSlice(r, rows*n, rows%4)
				x := randSlice(r, n, 3)
				want := make([]float32, rows)
				matVecGeneric(want, w, x)
				out, check := guarded(t, rows, 1)
				kernel(out, w, x)
				check()
				for i := range rows {
					requireClose(t, want[i], out[i], dotTol(w[i*n:(i+1)*n], x), msg, " row=", i)
				}
				requireSameAlone(t, msg, out, func(i int) float32 {
					var one [1]float32
					kernel(one[:], w[i*n:(i+1)*n], x)
					return one[0]
				})
				// And a piece of the quarters at a time (MatVecSteps).
				q := rows / 4
				for _, piece := range []int{1, 2} {
					got := make([]float32, rows)
					for a := 0; a < q; a += piece {
						steps[name](got[a:], w[a*n:], x, q, min(piece, q-a))
					}
					for i := range 4 * q {
						if math.Float32bits(got[i]) != math.Float32bits(out[i]) {
							t.Fatalf("%s: row %d: in pieces of %d steps %v, in one call %v", msg, i, piece, got[i], out[i])
						}
					}
				}
				// And within a call on a part of the rows.
				if lo, hi := rows/3, rows-rows/5; lo < hi {
					part := make([]float32, hi-lo)
					kernel(part, w[lo*n:hi*n], x)
					for i, v := range part {
						if math.Float32bits(v) != math.Float32bits(out[lo+i]) {
							t.Fatalf("%s: row %d: in rows [%d, %d) %v, in all %v", msg, lo+i, lo, hi, v, out[lo+i])
						}
					}
				}
			}
		}
	}
}

// requireSameAlone fails unless alone(i), row i computed in a call of its
// own, is out[i] bit for bit, for every row.
func requireSameAlone(t *testing.T, msg string, out []float32, alone func(i int) float32) {
	t.Helper()
	for i, v := range out {
		if a := alone(i); math.Float32bits(a) != math.Float32bits(v) {
			t.Fatalf("%s: row %d: alone %v, with the others %v", msg, i, a, v)
		}
	}
}

// TestMatVecQ8RowsApart runs the Q8_0 assembly kernels, which also take
// rows i, q+i, 2q+i and 3q+i together (q = len(out)/4), and their drivers
// (the last rows%4 rows by dotQ8Aligned) on many rows and on each row
// alone: every row must be the plain loop's value bit for bit.
func TestMatVecQ8RowsApart(t *testing.T) {
	type kernel func(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)
	kernels := map[string]kernel{}
	drivers := map[string]func(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32){}
	if hasVNNI {
		kernels["vnni32"], kernels["vnni64"] = matVecQ8x4VNNI32, matVecQ8x4VNNI64
		kernels["vnni32p0"], kernels["vnni64p0"] = matVecQ8x4VNNI32P0, matVecQ8x4VNNI64P0
		drivers["vnni"] = matVecQ8VNNI
	}
	if hasAVX2FMA {
		kernels["avx2"] = matVecQ8x4AVX2
		drivers["avx2"] = matVecQ8AVX2
	}
	if len(kernels) == 0 {
		t.Skip("no AVX2+FMA on this CPU")
	}
	r := rand.New(rand.NewPCG(31, 32))
	same := func(got, want []float32, msg string) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: row %d = %v, want %v", msg, i, got[i], want[i])
			}
		}
	}
	for _, gs := range []int{32, 64, 128} {
		for _, n := range []int{32, 96, 128, 288, 768, 1376} {
			if n%gs != 0 {
				continue
			}
			ng := n / gs
			const maxRows = 140
			c := newQ8Case(r, maxRows*n, n, gs)
			for _, rows := range []int{4, 8, 36, 132} {
				want := make([]float32, rows)
				matVecQ8Generic(want, c.wq, c.ws, 0, gs, c.xq, c.xs)
				for name, k := range kernels {
					if strings.HasPrefix(name, "vnni32") && gs != 32 || strings.HasPrefix(name, "vnni64") && gs%64 != 0 {
						continue
					}
					msg := fmt.Sprintf("%s gs=%d n=%d rows=%d", name, gs, n, rows)
					out, check := guarded(t, rows, 1)
					k(out, c.wq[:rows*n], c.ws[:rows*ng], c.xq, c.xs, gs)
					check()
					same(out, want, msg)
				}
			}
			for _, rows := range []int{1, 4, 5, 9, 35, 137} {
				want := make([]float32, rows)
				matVecQ8Generic(want, c.wq, c.ws, n, gs, c.xq, c.xs)
				for name, d := range drivers {
					msg := fmt.Sprintf("%s gs=%d n=%d rows=%d", name, gs, n, rows)
					out, check := guarded(t, rows, 1)
					d(out, c.wq, c.ws, n, gs, c.xq, c.xs)
					check()
					same(out, want, msg)
					for i := range rows {
						var one [1]float32
						d(one[:], c.wq, c.ws, (1+i)*n, gs, c.xq, c.xs)
						same(one[:], want[i:i+1], fmt.Sprintf("%s row %d alone", msg, i))
					}
				}
			}
		}
	}
}
