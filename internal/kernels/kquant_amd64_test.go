//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMatVecRowsApartKQuant checks that the K-quant matrix-vector kernels
// give each row the same value whichever rows it is computed with: in one
// call the VNNI kernels take rows i, q+i, 2q+i and 3q+i together (q =
// rows/4; the AVX2 kernels i and q+i, q = rows/2), then the last rows one
// at a time, and row by row every row takes the one-row kernel. Generation
// and batched decoding call them on different row ranges, and a sequence
// must get the same logits in both.
func TestMatVecRowsApartKQuant(t *testing.T) {
	arch := archKQImpls()
	r := rand.New(rand.NewPCG(29, 30))
	for ti, typ := range kqTypes() {
		if len(arch[ti]) == 0 {
			t.Skip("no AVX2 or AVX-512 VNNI on this CPU")
		}
		for _, nb := range []int{1, 2, 3} {
			n := nb * qkK
			rb := nb * typ.blockBytes
			for _, rows := range []int{4, 5, 9, 35} {
				w := randKBlocks(r, typ, rows*nb)
				xq, xs, xsum := kqRandActivation(r, n, 1)
				want, abs := refMatVecK(typ, w, rows, xq, xs)
				for _, impl := range arch[ti] {
					msg := fmt.Sprintf("%s/%s n=%d rows=%d", typ.name, impl.name, n, rows)
					out, check := kqGuarded(t, rows)
					impl.MatVec(out, w, xq, xs, xsum)
					check(msg)
					for i := range rows {
						kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s row %d", msg, i))
					}
					requireSameAlone(t, msg, out, func(i int) float32 {
						var one [1]float32
						impl.MatVec(one[:], w[i*rb:(i+1)*rb], xq, xs, xsum)
						return one[0]
					})
				}
			}
		}
	}
}
