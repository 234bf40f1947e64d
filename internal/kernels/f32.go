package kernels

import "math"

// Float32 kernels: the inner loops of a transformer forward pass.
//
// Each kernel comes in three forms:
//
//   - the dispatching function (dot, MatVec, ...) that the rest of the
//     package calls. It checks the lengths once, then runs the best
//     implementation for this CPU: on amd64 AVX-512, else AVX2+FMA, else
//     Go; on arm64 NEON. The choice is made from cpu.go's flags at init;
//     see f32_amd64.go, f32_arm64.go and f32_generic.go.
//   - a plain, obviously correct reference loop (dotGeneric, ...) that the
//     tests compare every implementation against.
//   - a pure-Go twin (dotGo, ...), somewhat faster than the reference, used
//     where there is no assembly (other architectures, -tags purego) and as
//     the baseline in benchmarks.
//
// All kernels accept any length, including 0, and sub-slices at any offset.
// MatVec and MatMat only write out, so several goroutines may run them at
// once on disjoint parts of out.

// dot returns the sum of x[i]*y[i] for i < len(x). len(y) >= len(x).
func Dot(x, y []float32) float32 {
	if len(y) < len(x) {
		panic("kernels: Dot: len(y) < len(x)")
	}
	return dotImpl(x, y)
}

// MatVec sets out[r] = Dot(w[r*n:(r+1)*n], x) for r < len(out), where
// n = len(x). len(w) >= len(out)*n.
func MatVec(out, w, x []float32) {
	if len(w) < len(out)*len(x) {
		panic("kernels: MatVec: len(w) < len(out)*len(x)")
	}
	matVecImpl(out, w, x)
}

// MatVecSteps computes steps [a, b) of MatVec's pass of 4 rows a quarter
// apart: rows j*q+s for j < 4 and a <= s < b, with the values MatVec gives
// them. len(out) >= 3q+b and len(w) >= (3q+b)*len(x).
func MatVecSteps(out, w, x []float32, q, a, b int) {
	n := len(x)
	if a < 0 || a > b || b > q || len(out) < 3*q+b || len(w) < (3*q+b)*n {
		panic("kernels: MatVecSteps: bad steps or short slices")
	}
	matVecStepsImpl(out, w, x, q, a, b)
}

// matVecStepsQuarters is MatVecSteps as four calls of MatVec, one per
// quarter, for kernels whose row values do not depend on the rows around.
func matVecStepsQuarters(out, w, x []float32, q, a, b int) {
	n := len(x)
	for j := range 4 {
		r0, r1 := j*q+a, j*q+b
		matVecImpl(out[r0:r1], w[r0*n:r1*n], x)
	}
}

// passVectors returns how many vectors of n floats one pass of a
// matrix-matrix kernel over the weights takes, for a batch of batch vectors
// in tiles of mult: about chunkBytes of them, rounded up to whole tiles,
// in passes of about equal size (balancedChunk). Every pass streams the
// whole matrix, so a pass of few vectors costs a generation step's memory
// traffic for little arithmetic. Rounding down had cut a TinyLlama-shaped
// fp32 prompt of 64 tokens (rows of 2048 floats) into passes of 63 and 1,
// and w2's (5632 floats) into 21, 21, 21 and 1: pp64 went from 76.0 to
// 83.6 tok/s at 2 threads (medians of 5 alternated runs) and from 54.4 to
// 61.3 at 1 thread (3 runs) on the Zen 5 VM.
func passVectors(batch, n, mult, chunkBytes int) int {
	limit := max(mult, (chunkBytes/(4*max(n, 1))+mult-1)/mult*mult)
	return balancedChunk(batch, limit, mult)
}

// balancedChunk returns how many vectors each pass takes when batch vectors
// go in passes of at most limit (a multiple of mult): as few passes as
// limit allows, of about equal size, each a multiple of mult.
func balancedChunk(batch, limit, mult int) int {
	if batch <= limit {
		return limit
	}
	passes := (batch + limit - 1) / limit
	per := (batch + passes - 1) / passes
	return (per + mult - 1) / mult * mult
}

// MatMat is MatVec for a batch of vectors: x holds batch vectors of
// n = len(x)/batch floats, out holds batch rows of m = len(out)/batch floats:
// out[b*m+r] = Dot(w[r*n:(r+1)*n], x[b*n:(b+1)*n]). len(w) >= m*n, and
// len(x), len(out) are multiples of batch.
func MatMat(out, w, x []float32, batch int) {
	checkMatMat(out, w, x, batch)
	matMatImpl(out, w, x, batch)
}

// Axpy sets y[i] += a*x[i] for i < len(x). len(y) >= len(x).
func Axpy(a float32, x, y []float32) {
	if len(y) < len(x) {
		panic("kernels: Axpy: len(y) < len(x)")
	}
	axpyImpl(a, x, y)
}

// ScaleMul sets out[i] = w[i] * (s * x[i]) for i < len(out), in that order of
// operations (rmsnorm's last step). len(w), len(x) >= len(out).
func ScaleMul(out, w, x []float32, s float32) {
	if len(w) < len(out) || len(x) < len(out) {
		panic("kernels: ScaleMul: len(w) or len(x) < len(out)")
	}
	scaleMulImpl(out, w, x, s)
}

// SiluMul sets hb[i] = silu(hb[i]) * hb2[i] for i < len(hb) (SwiGLU), with
// run.c's order of operations: v *= 1/(1+exp(-v)); hb[i] = v*hb2[i], exp
// being exp32. len(hb2) >= len(hb).
func SiluMul(hb, hb2 []float32) {
	if len(hb2) < len(hb) {
		panic("kernels: SiluMul: len(hb2) < len(hb)")
	}
	siluMulImpl(hb, hb2)
}

// ExpSubSum sets x[i] = exp(x[i]-m) (exp32) and returns the float32 sum of
// the new x[i] (in some order): softmax's middle step.
func ExpSubSum(x []float32, m float32) float32 { return expSubSumImpl(x, m) }

// Maxf returns the largest element of x, or -Inf if x is empty. x must not
// contain NaNs (the result is then unspecified).
func Maxf(x []float32) float32 { return maxfImpl(x) }

// DivScalar sets x[i] = x[i] / d (a true division, as run.c's softmax does,
// not a multiplication by 1/d).
func DivScalar(x []float32, d float32) { divScalarImpl(x, d) }

// DotStrided sets out[t] = Dot(q, k[t*stride:t*stride+len(q)]) for
// t < len(out): the attention scores of one head over positions whose keys
// are rows stride floats apart. stride >= len(q) and, when out is not empty,
// len(k) >= (len(out)-1)*stride + len(q); nothing past that is read.
func DotStrided(out, q, k []float32, stride int) {
	checkStrided("DotStrided", len(out), len(q), len(k), stride)
	dotStridedImpl(out, q, k, stride)
}

// AxpyStrided sets out[i] += sum over t < len(a) of a[t]*v[t*stride+i] for
// i < len(out): the attention-weighted sum of one head's values, rows stride
// floats apart. The terms are added to out[i] in order of t, each as one
// fused multiply-add on amd64 (exactly what a loop of Axpy(a[t], row t, out)
// computes). stride >= len(out) and, when a is not empty,
// len(v) >= (len(a)-1)*stride + len(out); nothing past that is read.
func AxpyStrided(out, a, v []float32, stride int) {
	checkStrided("AxpyStrided", len(a), len(out), len(v), stride)
	axpyStridedImpl(out, a, v, stride)
}

// checkStrided checks that rows rows of width floats, stride apart, fit in
// n floats.
func checkStrided(name string, rows, width, n, stride int) {
	if stride < width {
		panic("kernels: " + name + ": stride < row length")
	}
	if rows > 0 && n < (rows-1)*stride+width {
		panic("kernels: " + name + ": slice too short for its rows")
	}
}

func checkMatMat(out, w, x []float32, batch int) {
	if batch <= 0 {
		if batch == 0 && len(out) == 0 && len(x) == 0 {
			return
		}
		panic("kernels: MatMat: batch <= 0")
	}
	if len(x)%batch != 0 || len(out)%batch != 0 {
		panic("kernels: MatMat: len(x) or len(out) is not a multiple of batch")
	}
	if len(w) < (len(out)/batch)*(len(x)/batch) {
		panic("kernels: MatMat: len(w) < m*n")
	}
}

// kernelImpl is one complete implementation of the kernels, so tests and
// benchmarks can run each variant the machine supports explicitly.
type kernelImpl struct {
	name        string
	Dot         func(x, y []float32) float32
	MatVec      func(out, w, x []float32)
	MatMat      func(out, w, x []float32, batch int)
	Axpy        func(a float32, x, y []float32)
	ScaleMul    func(out, w, x []float32, s float32)
	SiluMul     func(hb, hb2 []float32)
	ExpSubSum   func(x []float32, m float32) float32
	Maxf        func(x []float32) float32
	DivScalar   func(x []float32, d float32)
	DotStrided  func(out, q, k []float32, stride int)
	AxpyStrided func(out, a, v []float32, stride int)
}

// goKernels is the pure-Go implementation, available everywhere.
var goKernels = kernelImpl{
	name: "go", Dot: dotGo, MatVec: matVecGo, MatMat: matMatGo, Axpy: axpyGo, ScaleMul: scaleMulGo,
	SiluMul: siluMulGo, ExpSubSum: expSubSumGo, Maxf: maxfGo, DivScalar: divScalarGo,
	DotStrided: dotStridedGo, AxpyStrided: axpyStridedGo,
}

// kernelImpls returns every implementation usable on this machine, fastest
// first; the first is the one the dispatching functions use.
func kernelImpls() []kernelImpl {
	return append(archKernels(), goKernels)
}

// Reference loops.

func dotGeneric(x, y []float32) float32 {
	var s float32
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

func matVecGeneric(out, w, x []float32) {
	n := len(x)
	for r := range out {
		out[r] = dotGeneric(w[r*n:(r+1)*n], x)
	}
}

func matMatGeneric(out, w, x []float32, batch int) {
	if batch == 0 {
		return
	}
	n, m := len(x)/batch, len(out)/batch
	for b := 0; b < batch; b++ {
		for r := 0; r < m; r++ {
			out[b*m+r] = dotGeneric(w[r*n:(r+1)*n], x[b*n:(b+1)*n])
		}
	}
}

func axpyGeneric(a float32, x, y []float32) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func scaleMulGeneric(out, w, x []float32, s float32) {
	for i := range out {
		out[i] = w[i] * (s * x[i])
	}
}

func siluMulGeneric(hb, hb2 []float32) {
	for i, v := range hb {
		v *= 1 / (1 + expRef(-v))
		hb[i] = v * hb2[i]
	}
}

func expSubSumGeneric(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		x[i] = expRef(v - m)
		sum += x[i]
	}
	return sum
}

func maxfGeneric(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

func divScalarGeneric(x []float32, d float32) {
	for i := range x {
		x[i] /= d
	}
}

func dotStridedGeneric(out, q, k []float32, stride int) {
	for t := range out {
		out[t] = dotGeneric(q, k[t*stride:t*stride+len(q)])
	}
}

func axpyStridedGeneric(out, a, v []float32, stride int) {
	for t, at := range a {
		axpyGeneric(at, v[t*stride:t*stride+len(out)], out)
	}
}

// Pure-Go twins.

// dotGo uses four independent partial sums, which lets the CPU overlap the
// additions instead of waiting for each one (about 3x the reference loop).
func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func matVecGo(out, w, x []float32) {
	n := len(x)
	for r := range out {
		out[r] = dotGo(w[r*n:(r+1)*n], x)
	}
}

func matMatGo(out, w, x []float32, batch int) {
	if batch == 0 {
		return
	}
	n, m := len(x)/batch, len(out)/batch
	for b := 0; b < batch; b++ {
		matVecGo(out[b*m:(b+1)*m], w[:m*n], x[b*n:(b+1)*n])
	}
}

func axpyGo(a float32, x, y []float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func scaleMulGo(out, w, x []float32, s float32) {
	w, x = w[:len(out)], x[:len(out)]
	for i := range out {
		out[i] = w[i] * (s * x[i])
	}
}

func siluMulGo(hb, hb2 []float32) {
	hb2 = hb2[:len(hb)]
	for i, v := range hb {
		v *= 1 / (1 + exp32(-v))
		hb[i] = v * hb2[i]
	}
}

func expSubSumGo(x []float32, m float32) float32 {
	var sum float32
	for i, v := range x {
		e := exp32(v - m)
		x[i] = e
		sum += e
	}
	return sum
}

func maxfGo(x []float32) float32 { return maxfGeneric(x) }

func divScalarGo(x []float32, d float32) { divScalarGeneric(x, d) }

func dotStridedGo(out, q, k []float32, stride int) {
	for t := range out {
		out[t] = dotGo(q, k[t*stride:t*stride+len(q)])
	}
}

func axpyStridedGo(out, a, v []float32, stride int) {
	for t, at := range a {
		axpyGo(at, v[t*stride:t*stride+len(out)], out)
	}
}

// Softmax normalises x in place into probabilities: exp(x[i]-max) over
// their sum, run.c's order of operations.
func Softmax(x []float32) {
	sum := ExpSubSum(x, Maxf(x))
	DivScalar(x, sum)
}
