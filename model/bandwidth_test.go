package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/stretchr/testify/require"
)

func TestBandwidthProbe(t *testing.T) {
	_, err := NewBandwidthProbe(8*bandwidthGrain - 1)
	require.ErrorContains(t, err, "below the minimum")

	p, err := NewBandwidthProbe(8 << 20)
	require.NoError(t, err)
	for _, threads := range []int{1, 2} {
		bw := p.Measure(threads, 2)
		require.Greater(t, bw, 0.0, "%d threads", threads)
		require.False(t, math.IsInf(bw, 0), "%d threads", threads)
	}
	require.Zero(t, p.Measure(1, 0))
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	require.Zero(t, p.Measure(1, 1), "after Close")
	require.Zero(t, MeasureBandwidth(1024, 1, 1), "too small a buffer")
	require.Greater(t, MeasureBandwidth(8<<20, 1, 1), 0.0)
}

// BenchmarkMatVecDRAM streams about 600 MB of fp32 matrices of the stories
// and TinyLlama shapes from anonymous memory (huge pages, as MmapOff loads
// weights), one matrix at a time split between the threads as generation
// does, beside the bandwidth probe on the same memory: the kernel's share of
// what a reader gets, without the rest of a token (LLAMA2_BENCH_DRAM=1;
// LLAMA2_BENCH_DRAM_MIB=4400 streams as much as TinyLlama fp32: on the
// Zen 5 VM the kernel read 33.6-33.9 GB/s there, 33.8-37.0 in 600 MiB,
// both above the probe's 30-32).
func BenchmarkMatVecDRAM(b *testing.B) {
	if os.Getenv("LLAMA2_BENCH_DRAM") == "" {
		b.Skip("set LLAMA2_BENCH_DRAM=1 to run")
	}
	size := 600 << 20
	if v, err := strconv.Atoi(os.Getenv("LLAMA2_BENCH_DRAM_MIB")); err == nil && v > 0 {
		size = v << 20
	}
	data, free, _, err := allocAnon(size)
	require.NoError(b, err)
	b.Cleanup(func() { free() })
	w := float32s(data)
	for i := range w {
		w[i] = float32(i%7) - 3
	}
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("probe/%dT", threads), func(b *testing.B) {
			// MeasureBandwidth's probe, over the matrices' memory.
			half := len(w) / 2 / bandwidthGrain * bandwidthGrain
			p := &BandwidthProbe{buf: w[:2*half], a: w[:half], b: w[half : 2*half]}
			b.SetBytes(int64(8 * half))
			for b.Loop() {
				p.Measure(threads, 1)
			}
		})
	}
	for _, shape := range [][2]int{{768, 768}, {2048, 768}, {768, 2048}, {5632, 2048}} {
		rows, cols := shape[0], shape[1]
		mats := len(w) / (rows * cols)
		x := randomFloats(rand.New(rand.NewPCG(uint64(cols), 11)), cols)
		out := make([]float32, rows)
		bodies := make([]func(lo, hi int), mats)
		for m := range bodies {
			wm := w[m*rows*cols : (m+1)*rows*cols]
			bodies[m] = func(lo, hi int) { kernels.MatVec(out[lo:hi], wm[lo*cols:hi*cols], x) }
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/%dT", rows, cols, threads), func(b *testing.B) {
				p := newPool(threads)
				defer p.close()
				b.SetBytes(int64(4 * mats * rows * cols))
				for b.Loop() {
					for m := range mats {
						p.run(rows, rowGrain, bodies[m])
					}
				}
			})
		}
	}
}
