//go:build !(amd64 || arm64) || purego

package kernels

// Without assembly every kernel is its pure-Go twin.

func dotImpl(x, y []float32) float32                   { return dotGo(x, y) }
func matVecImpl(out, w, x []float32)                   { matVecGo(out, w, x) }
func matVecStepsImpl(out, w, x []float32, q, a, b int) { matVecStepsQuarters(out, w, x, q, a, b) }
func matMatImpl(out, w, x []float32, batch int)        { matMatGo(out, w, x, batch) }
func axpyImpl(a float32, x, y []float32)               { axpyGo(a, x, y) }
func scaleMulImpl(out, w, x []float32, s float32)      { scaleMulGo(out, w, x, s) }
func siluMulImpl(hb, hb2 []float32)                    { siluMulGo(hb, hb2) }
func expSubSumImpl(x []float32, m float32) float32     { return expSubSumGo(x, m) }
func maxfImpl(x []float32) float32                     { return maxfGo(x) }
func divScalarImpl(x []float32, d float32)             { divScalarGo(x, d) }
func dotStridedImpl(out, q, k []float32, stride int)   { dotStridedGo(out, q, k, stride) }
func axpyStridedImpl(out, a, v []float32, stride int)  { axpyStridedGo(out, a, v, stride) }
func archKernels() []kernelImpl                        { return nil }

// MatVecRowInvariant: the Go twin of MatVec computes each row alone.
func MatVecRowInvariant() bool { return true }

// MatMatBatchInvariant: the Go twin of MatMat sums each row of each
// vector alike (see f32_amd64.go).
func MatMatBatchInvariant() bool { return true }
