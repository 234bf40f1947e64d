//go:build !amd64 || purego

package kernels

// Without assembly the K-quant kernels are the pure-Go twins
// (kquant.go).

// matVecQ4_K sets out[r] to row r of the Q4_K matrix w times the activation
// (xq, xs, xsum); see qblock.go and kquant.go.
func matVecQ4_K(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ4_KGo(out, w, xq, xs, xsum)
}

// matVecQ5_K is matVecQ4_K for Q5_K weights.
func matVecQ5_K(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ5_KGo(out, w, xq, xs, xsum)
}

// matVecQ6_K is matVecQ4_K for Q6_K weights.
func matVecQ6_K(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecQ6_KGo(out, w, xq, xs, xsum)
}

// matMatQ4_K sets out[b*rows+r] to row r of the Q4_K matrix w times vector b
// of the batch; see qblock.go.
func matMatQ4_K(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatQ4_KGo(out, w, rows, xq, xs, xsum, batch)
}

// matMatQ5_K is matMatQ4_K for Q5_K weights.
func matMatQ5_K(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatQ5_KGo(out, w, rows, xq, xs, xsum, batch)
}

// matMatQ6_K is matMatQ4_K for Q6_K weights.
func matMatQ6_K(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatQ6_KGo(out, w, rows, xq, xs, xsum, batch)
}

func archKQImpls() [3][]kqImpl { return [3][]kqImpl{} }
