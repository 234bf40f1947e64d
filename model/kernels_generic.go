//go:build !amd64 || purego

package model

// Without assembly every kernel is its pure-Go twin.

func dotImpl(x, y []float32) float32              { return dotGo(x, y) }
func matVecImpl(out, w, x []float32)              { matVecGo(out, w, x) }
func matMatImpl(out, w, x []float32, batch int)   { matMatGo(out, w, x, batch) }
func axpyImpl(a float32, x, y []float32)          { axpyGo(a, x, y) }
func scaleMulImpl(out, w, x []float32, s float32) { scaleMulGo(out, w, x, s) }
func archKernels() []kernelImpl                   { return nil }
