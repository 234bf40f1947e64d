//go:build !amd64 || purego

package kernels

// Without assembly every legacy type's kernel is its pure-Go twin.

func matVecQ4_1Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ4_1Go(out, w, xq, xs, xsum)
}

func matVecQ5_0Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ5_0Go(out, w, xq, xs, xsum)
}

func matVecQ5_1Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ5_1Go(out, w, xq, xs, xsum)
}

func matVecIQ4NLImpl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecIQ4NLGo(out, w, xq, xs, xsum)
}

func matMatQ4_1Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	legacyGo.matMat[0](out, w, rows, xq, xs, xsum, batch)
}

func matMatQ5_0Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	legacyGo.matMat[1](out, w, rows, xq, xs, xsum, batch)
}

func matMatQ5_1Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	legacyGo.matMat[2](out, w, rows, xq, xs, xsum, batch)
}

func matMatIQ4NLImpl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	legacyGo.matMat[3](out, w, rows, xq, xs, xsum, batch)
}

func archLegacyImpls() []legacyImpl { return nil }
