//go:build !amd64 || purego

package kernels

// Without assembly every GGUF kernel is its pure-Go twin.

func matVecF16Impl(out []float32, w []uint16, x []float32)  { matVecF16Go(out, w, x) }
func matVecBF16Impl(out []float32, w []uint16, x []float32) { matVecBF16Go(out, w, x) }

func matMatF16Impl(out []float32, w []uint16, x []float32, batch int) {
	matMatF16Go(out, w, x, batch)
}

func matMatBF16Impl(out []float32, w []uint16, x []float32, batch int) {
	matMatBF16Go(out, w, x, batch)
}

func matVecQ8_0Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ8_0Go(out, w, xq, xs, xsum)
}

func matVecQ4_0Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ4_0Go(out, w, xq, xs, xsum)
}

func matMatQ8_0Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatQ8_0Go(out, w, rows, xq, xs, xsum, batch)
}

func matMatQ4_0Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatQ4_0Go(out, w, rows, xq, xs, xsum, batch)
}

func archGGUFImpls() []ggufImpl { return nil }
