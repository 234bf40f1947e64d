//go:build !(amd64 || arm64) || purego

package kernels

// MatVecQ8 sets out[r] = dotQ8 of row r of a Q8_0 tensor with n = len(xq)
// columns, for rows starting at flat index off: out[r] uses
// wq[off+r*n : off+(r+1)*n] and the tensor's scales ws (see
// matVecQ8Generic). Without assembly it is the pure-Go twin.
func MatVecQ8(out []float32, wq []int8, ws []float32, off, gs int, xq []int8, xs []float32) {
	matVecQ8Go(out, wq, ws, off, gs, xq, xs)
}

func archQ8Impls() []q8Impl { return nil }

// MatMatQ8Tiles is the batched Q8_0 kernel of q8_amd64.go; without it
// the caller multiplies vector by vector.
func MatMatQ8Tiles(out []float32, wq []int8, ws []float32, rows, gs int, xq []int8, xs []float32, batch int) int {
	return 0
}
