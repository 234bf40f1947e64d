//go:build !amd64 || purego

package kernels

// Resident panels (resident.go) need the AVX-512 VNNI kernels: other builds
// keep the file's layout, and the Go kernels serve the tests.
const ResidentKernels = false

func matVecResidentQ8_0(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentGo(residentQ8_0, out, p, xq, xs, xsum)
}

func matVecResidentQ4_0(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentGo(residentQ4_0, out, p, xq, xs, xsum)
}

func matMatResidentQ8_0(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResidentGo(residentQ8_0, out, p, rows, xq, xs, xsum, batch)
}

func matMatResidentQ4_0(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResidentGo(residentQ4_0, out, p, rows, xq, xs, xsum, batch)
}

func matVecResidentQ4_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentQ4_KGo(out, p, xq, xs, xsum)
}

func matMatResidentQ4_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResidentQ4_KGo(out, p, rows, xq, xs, xsum, batch)
}

func matVecResidentQ6_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentQ6_KGo(out, p, xq, xs, xsum)
}

func matMatResidentQ6_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResidentQ6_KGo(out, p, rows, xq, xs, xsum, batch)
}

func matVecResidentQ5_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResidentQ5_KGo(out, p, xq, xs, xsum)
}

func matMatResidentQ5_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResidentQ5_KGo(out, p, rows, xq, xs, xsum, batch)
}
