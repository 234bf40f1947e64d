//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMatVecRowsApartGGUF checks that the VNNI matrix-vector kernels give
// each row the same value whichever rows it is computed with: in one call
// they take rows i, q+i, 2q+i and 3q+i together (q = rows/4), then the last
// rows%4 one at a time, and row by row every row takes the one-row path.
// Generation and batched decoding call them on different row ranges, and a
// sequence must get the same logits in both.
func TestMatVecRowsApartGGUF(t *testing.T) {
	if !hasVNNI || !hasVBMI {
		t.Skip("no AVX-512 VNNI and VBMI on this CPU")
	}
	kernels := map[string]func([]float32, []byte, []int8, []float32){
		"Q8_0": matVecQ8_0SumsVNNI,
		"Q4_0": matVecQ4_0SumsVNNI,
	}
	r := rand.New(rand.NewPCG(27, 28))
	for _, bt := range blockCases {
		kernel := kernels[bt.name]
		for _, nb := range blockCounts {
			n := nb * QBlock
			for _, rows := range []int{4, 5, 9, 35} {
				msg := fmt.Sprintf("%s blocks=%d rows=%d", bt.name, nb, rows)
				w := randBlocks(r, bt, rows*nb, 1)
				xq, xs, xsum := randActivation(r, n, 1)
				want, tol := blockWant(bt, rows, w, xq, xs, xsum)
				out, check := guarded(t, rows, 1)
				kernel(out, w, xq, xs)
				checkOut(t, out, want, tol, check, msg)
				rb := nb * bt.bytes
				requireSameAlone(t, msg, out, func(i int) float32 {
					var one [1]float32
					kernel(one[:], w[i*rb:(i+1)*rb], xq, xs)
					return one[0]
				})
			}
		}
	}
}

// TestMatVecRowsApartHalf is TestMatVecRowsApartGGUF for F16 and BF16.
func TestMatVecRowsApartHalf(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512 on this CPU")
	}
	kernels := map[string]func([]float32, []uint16, []float32){
		"F16":  matVecF16AVX512,
		"BF16": matVecBF16AVX512,
	}
	r := rand.New(rand.NewPCG(29, 30))
	for _, h := range halfTypes {
		kernel := kernels[h.name]
		for _, n := range []int{1, 15, 16, 33, 64, 100} {
			for _, rows := range []int{4, 5, 9, 35} {
				msg := fmt.Sprintf("%s n=%d rows=%d", h.name, n, rows)
				w := randHalves(r, rows*n, 1, h.fromF)
				x := randSlice(r, n, 0)
				want, tol := halfWant(h, rows, w, x)
				out, check := guarded(t, rows, 1)
				kernel(out, w, x)
				checkOut(t, out, want, tol, check, msg)
				requireSameAlone(t, msg, out, func(i int) float32 {
					var one [1]float32
					kernel(one[:], w[i*n:(i+1)*n], x)
					return one[0]
				})
			}
		}
	}
}
