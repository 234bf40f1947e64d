package model

// Temporary plain kernels until the SIMD branch lands.

func dot(x, y []float32) float32 {
	var s float32
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

func matVec(out, w, x []float32) {
	n := len(x)
	for r := range out {
		out[r] = dot(w[r*n:(r+1)*n], x)
	}
}

func axpy(a float32, x, y []float32) {
	for i := range x {
		y[i] += a * x[i]
	}
}

func scaleMul(out, w, x []float32, s float32) {
	for i := range out {
		out[i] = w[i] * (s * x[i])
	}
}

func matMat(out, w, x []float32, batch int) {
	n, m := len(x)/batch, len(out)/batch
	for b := 0; b < batch; b++ {
		matVec(out[b*m:(b+1)*m], w, x[b*n:(b+1)*n])
	}
}
