package model

import (
	"fmt"
	"math"
	"time"

	"github.com/llama2-go/llama2/internal/kernels"
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
// stream, 27.5 with kernels.MatVec's four rows, and ~25 for the previous probe (one
// stream in the Go heap, which gets 4 KiB pages when transparent huge pages
// are "madvise"). A STREAM-like C read loop (gcc -O3 -march=native -fopenmp,
// huge pages) read 27-36. In a quieter window (load ~2) it read 40.3 GB/s
// on 1 thread and 75.6 on 2, above what llama.cpp's generation with -mmp 0
// effectively read on a TinyLlama-shaped fp32 model (24.3 and 52.8 GB/s), so
// the fraction no longer flatters us.
func MeasureBandwidth(size int64, threads, passes int) float64 {
	p, err := NewBandwidthProbe(size)
	if err != nil {
		return 0
	}
	defer p.Close()
	return p.Measure(threads, passes)
}

// BandwidthProbe is MeasureBandwidth's buffer, kept so that the bandwidth
// can be measured again and again beside what it puts in context (bench
// measures it after every generation run: on a shared machine the rate
// moves within minutes). Close releases it.
type BandwidthProbe struct {
	a, b []float32
	free func() error
}

// NewBandwidthProbe allocates and touches the buffer of size bytes that
// Measure reads. It fails when size is too small for one grain of the two
// streams, or when the memory cannot be had.
func NewBandwidthProbe(size int64) (*BandwidthProbe, error) {
	half := int(size/8) / bandwidthGrain * bandwidthGrain
	if half <= 0 {
		return nil, fmt.Errorf("bandwidth probe: %d bytes is below the minimum of %d", size, 8*bandwidthGrain)
	}
	data, free, _, err := allocAnon(2 * half * 4)
	if err != nil {
		return nil, fmt.Errorf("bandwidth probe: %w", err)
	}
	buf := float32s(data)
	for i := range buf {
		buf[i] = 1 // touch every page so the passes time reads, not faults
	}
	return &BandwidthProbe{a: buf[:half], b: buf[half:], free: free}, nil
}

// Measure returns the best rate of passes full reads of the buffer by
// threads cores, in bytes per second (see MeasureBandwidth), or 0 after
// Close or with passes < 1.
func (p *BandwidthProbe) Measure(threads, passes int) float64 {
	if p.a == nil || passes <= 0 {
		return 0
	}
	a, b := p.a, p.b
	pool := newPool(max(threads, 1))
	defer pool.close()
	sink := make([]float32, len(a)/bandwidthGrain)
	body := func(lo, hi int) {
		for i := lo; i < hi; i += bandwidthGrain {
			j := min(i+bandwidthGrain, hi)
			sink[i/bandwidthGrain] = kernels.Dot(a[i:j], b[i:j])
		}
	}
	best := math.Inf(1)
	for range passes {
		start := time.Now()
		pool.run(len(a), bandwidthGrain, body)
		best = min(best, time.Since(start).Seconds())
	}
	return float64(2*len(a)*4) / best
}

// Close releases the buffer. It is idempotent.
func (p *BandwidthProbe) Close() error {
	if p.a == nil {
		return nil
	}
	p.a, p.b = nil, nil
	return p.free()
}
