package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMatVecGGUF streams a whole matrix per call, as generation does
// for every token; the bytes are the weights' (b.SetBytes), so MB/s is the
// weight bandwidth. The shapes are TinyLlama's FFN matrices.
func BenchmarkMatVecGGUF(b *testing.B) {
	// 256x2048 fits L2 (Q8_0: 557 KB): the kernels' own speed.
	for _, shape := range [][2]int{{5632, 2048}, {2048, 5632}, {256, 2048}} {
		rows, n := shape[0], shape[1]
		r := rand.New(rand.NewPCG(1, 2))
		x := randSlice(r, n, 0)
		xq, xs, xsum := randActivation(r, n, 1)
		out := make([]float32, rows)
		for _, h := range halfTypes {
			w := randHalves(r, rows*n, 0, h.fromF)
			for _, k := range ggufImpls() {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", h.name, rows, n, k.name), func(b *testing.B) {
					f := h.MatVec(k)
					b.SetBytes(int64(2 * len(w)))
					for b.Loop() {
						f(out, w, x)
					}
				})
			}
		}
		for _, bt := range blockCases {
			w := randBlocks(r, bt, rows*n/QBlock, 0)
			for _, k := range ggufImpls() {
				b.Run(fmt.Sprintf("%s/%dx%d/%s", bt.name, rows, n, k.name), func(b *testing.B) {
					f := bt.MatVec(k)
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						f(out, w, xq, xs, xsum)
					}
				})
			}
		}
	}
}

// BenchmarkMatMatGGUF multiplies 64 vectors (a prompt) by a 2048x2048
// matrix; the bytes are the weights', read once per call.
func BenchmarkMatMatGGUF(b *testing.B) {
	const rows, n, batch = 2048, 2048, 64
	r := rand.New(rand.NewPCG(3, 4))
	x := randSlice(r, n*batch, 0)
	xq, xs, xsum := randActivation(r, n, batch)
	out := make([]float32, rows*batch)
	for _, h := range halfTypes {
		w := randHalves(r, rows*n, 0, h.fromF)
		for _, k := range ggufImpls() {
			b.Run(h.name+"/"+k.name, func(b *testing.B) {
				f := h.MatMat(k)
				b.SetBytes(int64(2 * len(w)))
				for b.Loop() {
					f(out, w, x, batch)
				}
				b.ReportMetric(float64(2*rows*n*batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
	for _, bt := range blockCases {
		w := randBlocks(r, bt, rows*n/QBlock, 0)
		for _, k := range ggufImpls() {
			b.Run(bt.name+"/"+k.name, func(b *testing.B) {
				f := bt.MatMat(k)
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					f(out, w, rows, xq, xs, xsum, batch)
				}
				b.ReportMetric(float64(2*rows*n*batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}

// BenchmarkLegacyGGUF times the legacy types' kernels: a matrix-vector
// product from L2 (256x2048) and from memory (4864x896, Qwen2.5-0.5B's
// FFN), and the batched product of 64 vectors by 896x896 (its attention
// projections), against Q4_0's where that is what to compare with.
func BenchmarkLegacyGGUF(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for typ, lt := range legacyTypes {
		for _, shape := range [][2]int{{256, 2048}, {4864, 896}} {
			rows, n := shape[0], shape[1]
			xq, xs, xsum := randActivation(r, n, 1)
			out := make([]float32, rows)
			w := randLegacyBlocks(r, lt.layout, rows*n/QBlock, 0)
			for _, k := range legacyImpls() {
				b.Run(fmt.Sprintf("matvec/%s/%dx%d/%s", lt.name, rows, n, k.name), func(b *testing.B) {
					b.SetBytes(int64(len(w)))
					for b.Loop() {
						k.matVec[typ](out, w, xq, xs, xsum)
					}
				})
			}
		}
		const rows, n, batch = 896, 896, 64
		xq, xs, xsum := randActivation(r, n, batch)
		out := make([]float32, rows*batch)
		w := randLegacyBlocks(r, lt.layout, rows*n/QBlock, 0)
		for _, k := range legacyImpls() {
			b.Run(fmt.Sprintf("matmat/%s/%s", lt.name, k.name), func(b *testing.B) {
				b.SetBytes(int64(len(w)))
				for b.Loop() {
					k.matMat[typ](out, w, rows, xq, xs, xsum, batch)
				}
				b.ReportMetric(float64(2*rows*n*batch)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GOP/s")
			})
		}
	}
}

// BenchmarkDecodeStepGGUF times what a decode step of `batch` sequences
// asks of a block of rows that stays in L2 (model's decodeBlockBytes):
// the batched kernel (MatMat, which for the panel types packs the rows
// before it multiplies) against one matrix-vector product per vector.
// ns/vec is per sequence; the crossover is where decode steps switch
// (matMatMinBatch).
func BenchmarkDecodeStepGGUF(b *testing.B) {
	const rows, n = 256, 2048
	r := rand.New(rand.NewPCG(7, 8))
	for _, bt := range blockCases {
		w := randBlocks(r, bt, rows*n/QBlock, 0)
		for _, batch := range []int{1, 2, 3, 4, 8} {
			xq, xs, xsum := randActivation(r, n, batch)
			out := make([]float32, rows*batch)
			nb := n / QBlock
			for _, way := range []string{"matmat", "matvec"} {
				b.Run(fmt.Sprintf("%s/batch=%d/%s", bt.name, batch, way), func(b *testing.B) {
					mm, mv := bt.MatMat(ggufDispatch), bt.MatVec(ggufDispatch)
					for b.Loop() {
						if way == "matmat" {
							mm(out, w, rows, xq, xs, xsum, batch)
							continue
						}
						for v := range batch {
							mv(out[v*rows:(v+1)*rows], w, xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb])
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/vec")
				})
			}
		}
	}
}
