//go:build arm64 && !purego

package kernels

// Dispatch on arm64: NEON assembly (f32_arm64.s and
// exp_arm64.s, written by hand) for every kernel. ASIMD is part of ARMv8-A, so hasNEON is always true
// here; the flag exists so that tests can run the Go twins through the same
// dispatch. Speed is by design, not measured: the project has no arm64
// machine, and qemu's timings say nothing about real cores.

func dotImpl(x, y []float32) float32 {
	if hasNEON {
		return dotNEON(x, y)
	}
	return dotGo(x, y)
}

func matVecImpl(out, w, x []float32) {
	if hasNEON {
		matVecNEON(out, w, x)
		return
	}
	matVecGo(out, w, x)
}

func matVecStepsImpl(out, w, x []float32, q, a, b int) { matVecStepsQuarters(out, w, x, q, a, b) }

// MatVecRowInvariant is false: rowsNEON gives the last rows of a call
// (dotNEON) other values than rows in blocks of 4 (matVec4NEON), so a
// product's rows must keep the split pool.run gives them.
func MatVecRowInvariant() bool { return false }

func matMatImpl(out, w, x []float32, batch int) {
	if hasNEON {
		matMatNEON(out, w, x, batch)
		return
	}
	matMatGo(out, w, x, batch)
}

func axpyImpl(a float32, x, y []float32) {
	if hasNEON {
		axpyNEON(a, x, y)
		return
	}
	axpyGo(a, x, y)
}

func scaleMulImpl(out, w, x []float32, s float32) {
	if hasNEON {
		scaleMulNEON(out, w, x, s)
		return
	}
	scaleMulGo(out, w, x, s)
}

func siluMulImpl(hb, hb2 []float32) {
	if hasNEON {
		siluMulNEON(hb, hb2)
		return
	}
	siluMulGo(hb, hb2)
}

func expSubSumImpl(x []float32, m float32) float32 {
	if hasNEON {
		return expSubSumNEON(x, m)
	}
	return expSubSumGo(x, m)
}

func maxfImpl(x []float32) float32 {
	if hasNEON {
		return maxfNEON(x)
	}
	return maxfGo(x)
}

func divScalarImpl(x []float32, d float32) {
	if hasNEON {
		divScalarNEON(x, d)
		return
	}
	divScalarGo(x, d)
}

func dotStridedImpl(out, q, k []float32, stride int) {
	if hasNEON {
		dotStridedNEON(out, q, k, stride)
		return
	}
	dotStridedGo(out, q, k, stride)
}

func axpyStridedImpl(out, a, v []float32, stride int) {
	if hasNEON {
		axpyStridedNEON(out, a, v, stride)
		return
	}
	axpyStridedGo(out, a, v, stride)
}

func archKernels() []kernelImpl {
	if !hasNEON {
		return nil
	}
	return []kernelImpl{{
		name: "neon", Dot: dotNEON, MatVec: matVecNEON, MatMat: matMatNEON, Axpy: axpyNEON, ScaleMul: scaleMulNEON,
		SiluMul: siluMulNEON, ExpSubSum: expSubSumNEON, Maxf: maxfNEON, DivScalar: divScalarNEON,
		DotStrided: dotStridedNEON, AxpyStrided: axpyStridedNEON,
	}}
}

// Assembly (f32_arm64.s). The callers above and the tests guarantee the
// length preconditions; the assembly does not check them.

// dotNEON computes
//
//	var s float32
//	for i := range x {
//		s += x[i] * y[i]
//	}
//	return s
//
// (with a different summation order, in fused multiply-adds). len(y) >= len(x).
//
//go:noescape
func dotNEON(x, y []float32) float32

// axpyNEON computes
//
//	for i := range x {
//		y[i] += a * x[i]
//	}
//
// (as one fused multiply-add per element, as Go compiles this loop on
// arm64). len(y) >= len(x).
//
//go:noescape
func axpyNEON(a float32, x, y []float32)

// scaleMulNEON computes, with exactly the same rounding,
//
//	for i := range out {
//		out[i] = w[i] * (s * x[i])
//	}
//
// len(w), len(x) >= len(out).
//
//go:noescape
func scaleMulNEON(out, w, x []float32, s float32)

// matVec4NEON computes, four rows per pass, over the first n&^3 columns
// (n = len(x)) of rows stride floats apart,
//
//	for r := range out {
//		var sum float32
//		for i := 0; i < n&^3; i++ {
//			sum += w[r*stride+i] * x[i]
//		}
//		out[r] = sum
//	}
//
// (with a different summation order, in fused multiply-adds). len(out) must
// be a multiple of 4, stride >= n and, if out is not empty,
// len(w) >= (len(out)-1)*stride+n.
//
//go:noescape
func matVec4NEON(out, w, x []float32, stride int)

// maxfNEON computes
//
//	m := float32(math.Inf(-1))
//	for _, v := range x {
//		if v > m {
//			m = v
//		}
//	}
//	return m
//
// for x without NaNs.
//
//go:noescape
func maxfNEON(x []float32) float32

// divScalarNEON computes, with exactly the same rounding,
//
//	for i := range x {
//		x[i] /= d
//	}
//
//go:noescape
func divScalarNEON(x []float32, d float32)

// Go drivers.

func matVecNEON(out, w, x []float32) {
	if len(w) < len(out)*len(x) {
		panic("kernels: MatVec: len(w) < len(out)*len(x)")
	}
	rowsNEON(out, w, x, len(x))
}

// rowsNEON sets out[r] = Dot(w[r*stride:r*stride+n], x), n = len(x), for
// rows stride >= n floats apart: matVec4NEON on blocks of 4 rows (and the
// Go twin on their last n%4 columns), dotNEON on the last rows. The caller
// checks len(w).
func rowsNEON(out, w, x []float32, stride int) {
	n := len(x)
	m4 := len(out) &^ 3
	if m4 > 0 {
		matVec4NEON(out[:m4], w[:(m4-1)*stride+n], x, stride)
		if n4 := n &^ 3; n4 < n {
			for r := 0; r < m4; r++ {
				out[r] += dotGo(w[r*stride+n4:r*stride+n], x[n4:])
			}
		}
	}
	for r := m4; r < len(out); r++ {
		out[r] = dotNEON(w[r*stride:r*stride+n], x)
	}
}

// matMatNEONChunkBytes is about the bytes of x that one sweep over the rows of
// w reuses, so that they stay in L2 (1 MiB and more on Neoverse and Apple
// cores; half leaves room for w and out), as matMatChunkBytes on amd64.
const matMatNEONChunkBytes = 512 << 10

// matMatNEON runs the 4x2 tiles over out: 4 rows of w by 2 vectors of x at
// a time, in chunks of vectors that stay in L2. The last n%4 columns of the
// tiles go through the Go twin, the rows past the last multiple of 4
// through dotNEON, an odd last vector through matVecNEON.
func matMatNEON(out, w, x []float32, batch int) {
	checkMatMat(out, w, x, batch)
	if batch == 0 {
		return
	}
	n, m := len(x)/batch, len(out)/batch
	n4, m4 := n&^3, m&^3
	bFull := batch &^ 1
	chunk := passVectors(bFull, n, 2, matMatNEONChunkBytes)
	for b0 := 0; b0 < bFull; b0 += chunk {
		b1 := min(b0+chunk, bFull)
		for r := 0; r < m4; r += 4 {
			matMat4x2NEON(out[b0*m+r:(b1-1)*m+r+4], w[r*n:(r+4)*n], x[b0*n:b1*n], n, m, (b1-b0)/2)
			if n4 < n {
				for b := b0; b < b1; b++ {
					for rr := r; rr < r+4; rr++ {
						out[b*m+rr] += dotGo(w[rr*n+n4:(rr+1)*n], x[b*n+n4:(b+1)*n])
					}
				}
			}
		}
		for r := m4; r < m; r++ {
			wr := w[r*n : (r+1)*n]
			for b := b0; b < b1; b++ {
				out[b*m+r] = dotNEON(wr, x[b*n:(b+1)*n])
			}
		}
	}
	for b := bFull; b < batch; b++ {
		matVecNEON(out[b*m:(b+1)*m], w[:m*n], x[b*n:(b+1)*n])
	}
}

// matMat4x2NEON computes tiles of 4 rows by 2 vectors of MatMat over the
// first n&^3 columns:
//
//	for b := 0; b < 2*tiles; b++ {
//		for r := 0; r < 4; r++ {
//			var sum float32
//			for i := 0; i < n&^3; i++ {
//				sum += w[r*n+i] * x[b*n+i]
//			}
//			out[b*m+r] = sum
//		}
//	}
//
// (with a different summation order, in fused multiply-adds). len(w) >= 4*n,
// len(x) >= 2*tiles*n and len(out) >= (2*tiles-1)*m+4.
//
//go:noescape
func matMat4x2NEON(out, w, x []float32, n, m, tiles int)

// dotStridedNEON is MatVec with rows stride floats apart: the keys of
// consecutive positions.
func dotStridedNEON(out, q, k []float32, stride int) {
	rowsNEON(out, k, q, stride)
}

// axpyStridedNEON is a loop of axpyNEON over the rows, so it computes
// exactly what the attention code's Axpy loop computes.
func axpyStridedNEON(out, a, v []float32, stride int) {
	for t, at := range a {
		axpyNEON(at, v[t*stride:t*stride+len(out)], out)
	}
}

// MatMatBatchInvariant: the NEON tiles sum in another order than MatVec,
// which takes the vectors left over from them (see f32_amd64.go).
func MatMatBatchInvariant() bool { return false }
