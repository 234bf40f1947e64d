package model

import (
	"math"
	"time"
)

// MeasureBandwidth returns the rate, in bytes per second, at which threads
// cores stream a buffer of size bytes from memory with this package's dot
// kernel: the best of passes full reads. It puts generation speed in context,
// since a token reads every weight once. size should be far larger than the
// caches (1 GiB is typical).
func MeasureBandwidth(size int64, threads, passes int) float64 {
	n := int(size / 4)
	if n <= 0 || passes <= 0 {
		return 0
	}
	buf := make([]float32, n)
	for i := range buf {
		buf[i] = 1 // touch every page so the passes time reads, not faults
	}
	p := newPool(max(threads, 1))
	defer p.close()
	const grain = 1 << 16
	sink := make([]float32, n/grain+1)
	body := func(lo, hi int) {
		for i := lo; i < hi; i += grain {
			j := min(i+grain, hi)
			sink[i/grain] = dot(buf[i:j], buf[i:j])
		}
	}
	best := math.Inf(1)
	for range passes {
		start := time.Now()
		p.run(n, grain, body)
		best = min(best, time.Since(start).Seconds())
	}
	return float64(n*4) / best
}
