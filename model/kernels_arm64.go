//go:build arm64 && !purego

package model

// Dispatch on arm64: NEON assembly (kernels_arm64.s, written by hand) for
// the products and the element-wise kernels without exp; the others are
// their pure-Go twins. ASIMD is part of ARMv8-A, so hasNEON is always true
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

func siluMulImpl(hb, hb2 []float32)                { siluMulGo(hb, hb2) }
func expSubSumImpl(x []float32, m float32) float32 { return expSubSumGo(x, m) }
func maxfImpl(x []float32) float32                 { return maxfGo(x) }
func divScalarImpl(x []float32, d float32)         { divScalarGo(x, d) }

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
		name: "neon", dot: dotNEON, matVec: matVecNEON, matMat: matMatNEON, axpy: axpyNEON, scaleMul: scaleMulNEON,
		siluMul: siluMulGo, expSubSum: expSubSumGo, maxf: maxfGo, divScalar: divScalarGo,
		dotStrided: dotStridedNEON, axpyStrided: axpyStridedNEON,
	}}
}

// Assembly (kernels_arm64.s). The callers above and the tests guarantee the
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
// (n = len(x)),
//
//	for r := range out {
//		var sum float32
//		for i := 0; i < n&^3; i++ {
//			sum += w[r*n+i] * x[i]
//		}
//		out[r] = sum
//	}
//
// (with a different summation order, in fused multiply-adds). len(out) must
// be a multiple of 4 and len(w) >= len(out)*n.
//
//go:noescape
func matVec4NEON(out, w, x []float32)

// Go drivers.

func matVecNEON(out, w, x []float32) {
	n := len(x)
	if len(w) < len(out)*n {
		panic("model: matVec: len(w) < len(out)*len(x)")
	}
	m4 := len(out) &^ 3
	matVec4NEON(out[:m4], w, x)
	if n4 := n &^ 3; n4 < n {
		for r := 0; r < m4; r++ {
			out[r] += dotGo(w[r*n+n4:(r+1)*n], x[n4:])
		}
	}
	for r := m4; r < len(out); r++ {
		out[r] = dotNEON(w[r*n:(r+1)*n], x)
	}
}

// matMatNEON multiplies vector by vector: each vector streams w once, which
// stays in L2 for the stories shapes' matrices up to 1 MiB. (A tile kernel
// sharing each load of w among several vectors is future work.)
func matMatNEON(out, w, x []float32, batch int) {
	checkMatMat(out, w, x, batch)
	if batch == 0 {
		return
	}
	n, m := len(x)/batch, len(out)/batch
	for b := 0; b < batch; b++ {
		matVecNEON(out[b*m:(b+1)*m], w[:m*n], x[b*n:(b+1)*n])
	}
}

func dotStridedNEON(out, q, k []float32, stride int) {
	for t := range out {
		out[t] = dotNEON(q, k[t*stride:t*stride+len(q)])
	}
}

// axpyStridedNEON is a loop of axpyNEON over the rows, so it computes
// exactly what the attention code's axpy loop computes.
func axpyStridedNEON(out, a, v []float32, stride int) {
	for t, at := range a {
		axpyNEON(at, v[t*stride:t*stride+len(out)], out)
	}
}
