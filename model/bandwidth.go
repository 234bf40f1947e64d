package model

import (
	"math"
	"time"
)

// bandwidthGrain is the floats of each stream one task of the pool reads.
const bandwidthGrain = 1 << 16

// MeasureBandwidth returns the rate, in bytes per second, at which threads
// cores read a buffer of size bytes from memory: the best of passes full
// reads. It puts generation speed in context, since a token reads every
// weight once. size should be far larger than the caches (1 GiB is typical).
//
// It measures the most a reader gets, since a fraction of it is what bench
// reports: the buffer is anonymous memory on huge pages (as MmapOff loads
// weights), and each thread reads two streams half the buffer apart with
// the AVX dot kernel. On a Zen 5 VM (1 GiB, 4 alternating rounds, load
// average ~5), 1 thread read 34.5 GB/s (median) so, against 27.5 with one
// stream, 27.5 with matVec's four rows, and ~25 for the previous probe (one
// stream in the Go heap, which gets 4 KiB pages when transparent huge pages
// are "madvise"). A STREAM-like C read loop (gcc -O3 -march=native -fopenmp,
// huge pages) read 27-36. In a quieter window (load ~2) it read 40.3 GB/s
// on 1 thread and 75.6 on 2, above what llama.cpp's generation with -mmp 0
// effectively read on a TinyLlama-shaped fp32 model (24.3 and 52.8 GB/s), so
// the fraction no longer flatters us.
func MeasureBandwidth(size int64, threads, passes int) float64 {
	half := int(size/8) / bandwidthGrain * bandwidthGrain
	if half <= 0 || passes <= 0 {
		return 0
	}
	data, free, _, err := allocAnon(2 * half * 4)
	if err != nil {
		return 0
	}
	defer free()
	buf := float32s(data)
	for i := range buf {
		buf[i] = 1 // touch every page so the passes time reads, not faults
	}
	a, b := buf[:half], buf[half:]
	p := newPool(max(threads, 1))
	defer p.close()
	sink := make([]float32, half/bandwidthGrain)
	body := func(lo, hi int) {
		for i := lo; i < hi; i += bandwidthGrain {
			j := min(i+bandwidthGrain, hi)
			sink[i/bandwidthGrain] = dot(a[i:j], b[i:j])
		}
	}
	best := math.Inf(1)
	for range passes {
		start := time.Now()
		p.run(half, bandwidthGrain, body)
		best = min(best, time.Since(start).Seconds())
	}
	return float64(2*half*4) / best
}
