package model

import (
	"fmt"
	"time"

	"github.com/llama2-go/llama2/internal/kernels"
)

// bandwidthGrain is the floats of each stream one task of the pool reads.
const bandwidthGrain = 1 << 16

// MeasureBandwidth returns the rate, in bytes per second, at which threads
// cores read a buffer of size bytes from memory: the best of passes full
// reads in each of the read patterns of the kernels (readPatterns). It puts
// generation speed in context, since a token reads every weight once. size
// should be far larger than the caches (1 GiB is typical).
//
// It measures the most a reader gets, since a fraction of it is what bench
// reports, and that fraction must not pass 100%: the buffer is anonymous
// memory on huge pages (as MmapOff loads weights), and each pattern is one
// the kernels read with. Which is fastest depends on the machine. On the
// Zen 5 VM (1 GiB, 4 alternating rounds, load average ~5) two streams half
// the buffer apart read 34.5 GB/s at 1 thread against 27.5 for one stream
// and 27.5 for kernels.MatVec's four rows a quarter apart, and the
// generation of Q8_0 and fp32 models read up to 131% of it. On the Zen 4
// VM (family 25 model 17) the order turned: a STREAM-like C read loop (gcc
// -O3 -march=native -fopenmp, huge pages) read 31 GB/s on one thread with
// one stream, 20 with two and 20 with four; bench's two streams measured
// 22, and TinyLlama-shaped Q4_K_M generation read 116-120% of that (fp32
// 112%, Q8_0 120%). So the probe tries them all.
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
	buf  []float32 // a then b
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
	return &BandwidthProbe{buf: buf, a: buf[:half], b: buf[half:], free: free}, nil
}

// Measure returns the best rate of passes full reads of the buffer in each
// read pattern by threads cores, in bytes per second (see
// MeasureBandwidth), or 0 after Close or with passes < 1.
func (p *BandwidthProbe) Measure(threads, passes int) float64 {
	if p.a == nil || passes <= 0 {
		return 0
	}
	pool := newPool(max(threads, 1))
	defer pool.close()
	best := 0.0
	for _, pat := range p.readPatterns() {
		for range passes {
			start := time.Now()
			pool.run(pat.tasks, 1, pat.body)
			best = max(best, float64(pat.bytes)/time.Since(start).Seconds())
		}
	}
	return best
}

// readPattern is one way of reading the whole buffer: tasks pieces for the
// pool, bytes read in all.
type readPattern struct {
	tasks int
	bytes int64
	body  func(lo, hi int)
}

// probeRow is the length of the rows of the matrix-vector pattern:
// TinyLlama's 2048, whose matrices are the ones whose generation came out
// above the two-stream probe.
const probeRow = 2048

// readPatterns are the kernels' ways of reading memory: one stream (a
// thread's rows of a K-quant or resident panel kernel, read in order),
// two streams half the buffer apart (the previous probe), and the float32
// matrix-vector kernel's four rows a quarter apart with its prefetches.
func (p *BandwidthProbe) readPatterns() []readPattern {
	a, b, buf := p.a, p.b, p.buf
	grains := len(a) / bandwidthGrain
	sink := make([]float32, 2*grains)
	rows := len(buf) / probeRow
	const rowsPerTask = 256 // 2 MiB of rows a task
	x := make([]float32, probeRow)
	out := make([]float32, rows)
	return []readPattern{
		{2 * grains, int64(len(buf)) * 4, func(lo, hi int) {
			for g := lo; g < hi; g++ {
				s := buf[g*bandwidthGrain : (g+1)*bandwidthGrain]
				sink[g] = kernels.Dot(s, s) // one stream: both operands are the same lines
			}
		}},
		{grains, int64(len(buf)) * 4, func(lo, hi int) {
			for g := lo; g < hi; g++ {
				i, j := g*bandwidthGrain, (g+1)*bandwidthGrain
				sink[g] = kernels.Dot(a[i:j], b[i:j])
			}
		}},
		{(rows + rowsPerTask - 1) / rowsPerTask, int64(rows) * probeRow * 4, func(lo, hi int) {
			r0, r1 := lo*rowsPerTask, min(hi*rowsPerTask, rows)
			kernels.MatVec(out[r0:r1], buf[r0*probeRow:r1*probeRow], x)
		}},
	}
}

// Close releases the buffer. It is idempotent.
func (p *BandwidthProbe) Close() error {
	if p.a == nil {
		return nil
	}
	p.buf, p.a, p.b = nil, nil, nil
	return p.free()
}
