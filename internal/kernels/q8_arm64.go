//go:build arm64 && !purego

package kernels

// MatVecQ8 sets out[r] = dotQ8 of row r of a Q8_0 tensor with n = len(xq)
// columns, for rows starting at flat index off: out[r] uses
// wq[off+r*n : off+(r+1)*n] and the tensor's scales ws (see
// matVecQ8Generic; every implementation gives bit-identical results).
// Dispatch: NEON with SDOT where the CPU has the dot-product extension,
// else NEON with widening multiplies, from cpu.go's flags.
func MatVecQ8(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	switch {
	case hasASIMDDP:
		matVecQ8SDOT(out, wq, ws, off, gs, xq, xs)
	case hasNEON:
		matVecQ8NEON(out, wq, ws, off, gs, xq, xs)
	default:
		matVecQ8Go(out, wq, ws, off, gs, xq, xs)
	}
}

func archQ8Impls() []q8Impl {
	var impls []q8Impl
	if hasASIMDDP {
		impls = append(impls, q8Impl{"sdot", matVecQ8SDOT})
	}
	if hasNEON {
		impls = append(impls, q8Impl{"neon", matVecQ8NEON})
	}
	return impls
}

// MatMatQ8Tiles is the batched Q8_0 kernel of q8_amd64.go; without it
// the caller multiplies vector by vector.
func MatMatQ8Tiles(out []float32, wq []int8, ws []float32, rows, gs int, xq []int8, xs []float32, batch int) int {
	return 0
}

// Go drivers: the assembly takes aligned shapes (q8Aligned) with groups of
// a multiple of 16 bytes, in blocks of 4 rows; the remaining 1-3 rows run
// dotQ8Aligned, other shapes the Go twin (which takes the plain loop for
// unaligned ones).

func matVecQ8SDOT(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	matVecQ8Arm64(out, wq, ws, off, gs, xq, xs, matVecQ8x4SDOT)
}

func matVecQ8NEON(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	matVecQ8Arm64(out, wq, ws, off, gs, xq, xs, matVecQ8x4NEON)
}

func matVecQ8Arm64(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32,
	kernel func(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)) {
	n := len(xq)
	if !q8Aligned(n, off, gs) || gs%16 != 0 {
		matVecQ8Go(out, wq, ws, off, gs, xq, xs)
		return
	}
	w, s, xs := q8Rows(out, wq, ws, off, gs, xq, xs)
	m4 := len(out) &^ 3
	if m4 > 0 {
		kernel(out[:m4], w, s, xq, xs, gs)
	}
	ng := len(xs)
	for r := m4; r < len(out); r++ {
		out[r] = dotQ8Aligned(w[r*n:(r+1)*n], s[r*ng:(r+1)*ng], gs, xq, xs)
	}
}

// Assembly (q8_arm64.s). Each computes, for the rows of an aligned
// product with n = len(x) columns and ng = len(xs) = n/gs groups per row,
//
//	for r := range out {
//		var total float32
//		for g := 0; g < ng; g++ {
//			var sum int32
//			for k := g * gs; k < (g+1)*gs; k++ {
//				sum += int32(w[r*n+k]) * int32(x[k])
//			}
//			total += float32(float32(float32(sum)*ws[r*ng+g]) * xs[g])
//		}
//		out[r] = total
//	}
//
// with the same result bit for bit, for all int8 values (-128 included):
// the int32 sums are exact in any order, and the float steps are separate
// multiplies and an add, in this order. Preconditions, not checked:
// len(out) is a multiple of 4 and > 0; n > 0, gs%16 == 0 and n%gs == 0;
// len(w) >= len(out)*n and len(ws) >= len(out)*ng.

// matVecQ8x4SDOT sums each group with SDOT (ARMv8.2 dot product: four
// int8 products added into each int32 lane).
//
//go:noescape
func matVecQ8x4SDOT(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)

// matVecQ8x4NEON sums each group with SMULL/SMULL2 (int8 products widened
// to int16) and SADALP (pairs added into int32 lanes), for CPUs without
// SDOT.
//
//go:noescape
func matVecQ8x4NEON(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)
