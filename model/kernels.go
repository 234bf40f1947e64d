package model

// Float32 kernels: the inner loops of a transformer forward pass.
//
// Each kernel comes in three forms:
//
//   - the dispatching function (dot, matVec, ...) that the rest of the
//     package calls. It checks the lengths once, then runs the best
//     implementation for this CPU: AVX-512, else AVX2+FMA, else Go. The
//     choice is made from cpu.go's flags at init; see kernels_amd64.go and
//     kernels_generic.go.
//   - a plain, obviously correct reference loop (dotGeneric, ...) that the
//     tests compare every implementation against.
//   - a pure-Go twin (dotGo, ...), somewhat faster than the reference, used
//     where there is no assembly (other architectures, -tags purego) and as
//     the baseline in benchmarks.
//
// All kernels accept any length, including 0, and sub-slices at any offset.
// matVec and matMat only write out, so several goroutines may run them at
// once on disjoint parts of out.

// dot returns the sum of x[i]*y[i] for i < len(x). len(y) >= len(x).
func dot(x, y []float32) float32 {
	if len(y) < len(x) {
		panic("model: dot: len(y) < len(x)")
	}
	return dotImpl(x, y)
}

// matVec sets out[r] = dot(w[r*n:(r+1)*n], x) for r < len(out), where
// n = len(x). len(w) >= len(out)*n.
func matVec(out, w, x []float32) {
	if len(w) < len(out)*len(x) {
		panic("model: matVec: len(w) < len(out)*len(x)")
	}
	matVecImpl(out, w, x)
}

// matMat is matVec for a batch of vectors: x holds batch vectors of
// n = len(x)/batch floats, out holds batch rows of m = len(out)/batch floats:
// out[b*m+r] = dot(w[r*n:(r+1)*n], x[b*n:(b+1)*n]). len(w) >= m*n, and
// len(x), len(out) are multiples of batch.
func matMat(out, w, x []float32, batch int) {
	checkMatMat(out, w, x, batch)
	matMatImpl(out, w, x, batch)
}

// axpy sets y[i] += a*x[i] for i < len(x). len(y) >= len(x).
func axpy(a float32, x, y []float32) {
	if len(y) < len(x) {
		panic("model: axpy: len(y) < len(x)")
	}
	axpyImpl(a, x, y)
}

// scaleMul sets out[i] = w[i] * (s * x[i]) for i < len(out), in that order of
// operations (rmsnorm's last step). len(w), len(x) >= len(out).
func scaleMul(out, w, x []float32, s float32) {
	if len(w) < len(out) || len(x) < len(out) {
		panic("model: scaleMul: len(w) or len(x) < len(out)")
	}
	scaleMulImpl(out, w, x, s)
}

func checkMatMat(out, w, x []float32, batch int) {
	if batch <= 0 {
		if batch == 0 && len(out) == 0 && len(x) == 0 {
			return
		}
		panic("model: matMat: batch <= 0")
	}
	if len(x)%batch != 0 || len(out)%batch != 0 {
		panic("model: matMat: len(x) or len(out) is not a multiple of batch")
	}
	if len(w) < (len(out)/batch)*(len(x)/batch) {
		panic("model: matMat: len(w) < m*n")
	}
}

// kernelImpl is one complete implementation of the kernels, so tests and
// benchmarks can run each variant the machine supports explicitly.
type kernelImpl struct {
	name     string
	dot      func(x, y []float32) float32
	matVec   func(out, w, x []float32)
	matMat   func(out, w, x []float32, batch int)
	axpy     func(a float32, x, y []float32)
	scaleMul func(out, w, x []float32, s float32)
}

// goKernels is the pure-Go implementation, available everywhere.
var goKernels = kernelImpl{"go", dotGo, matVecGo, matMatGo, axpyGo, scaleMulGo}

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
