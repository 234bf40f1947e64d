package model

import (
	"math"
	"time"
)

// Shape of the buffer MeasureBandwidth streams, as a matrix: rows of
// bandwidthCols floats (32 KiB, so the vector stays in L1), bandwidthGrain
// rows per task of the pool.
const (
	bandwidthCols  = 8192
	bandwidthGrain = 64
)

// MeasureBandwidth returns the rate, in bytes per second, at which threads
// cores read a buffer of size bytes from memory: the best of passes full
// reads. It puts generation speed in context, since a token reads every
// weight once. size should be far larger than the caches (1 GiB is typical).
//
// It reads the way generation does, at the best the machine allows: the
// buffer is anonymous memory on huge pages (as OpenOptions{Mmap: MmapOff}
// loads weights), read as a matrix times a vector by the same matVec kernel,
// which streams four rows at once. The previous probe, one dot-product stream
// per thread over Go-heap memory (4 KiB pages), reported 33 GB/s on 1 thread
// of a Zen 5 VM where llama.cpp's generation effectively read 39 GB/s, so the
// fraction of bandwidth that bench printed flattered us.
func MeasureBandwidth(size int64, threads, passes int) float64 {
	rows := int(size/4) / bandwidthCols
	if rows <= 0 || passes <= 0 {
		return 0
	}
	n := rows * bandwidthCols
	data, free, _, err := allocAnon(n * 4)
	if err != nil {
		return 0
	}
	defer free()
	buf := float32s(data)
	for i := range buf {
		buf[i] = 1 // touch every page so the passes time reads, not faults
	}
	x := make([]float32, bandwidthCols)
	out := make([]float32, rows)
	p := newPool(max(threads, 1))
	defer p.close()
	body := func(lo, hi int) {
		matVec(out[lo:hi], buf[lo*bandwidthCols:hi*bandwidthCols], x)
	}
	best := math.Inf(1)
	for range passes {
		start := time.Now()
		p.run(rows, bandwidthGrain, body)
		best = min(best, time.Since(start).Seconds())
	}
	return float64(n*4) / best
}
