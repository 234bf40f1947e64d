package model

import (
	"sync/atomic"

	"github.com/llama2-go/llama2/internal/kernels"
)

// A steal plan runs one token's matrix-vector product over float32 weights
// on the pool's threads, with the threads that finish first taking over the
// rest of the others' rows.
//
// Each thread's share of a matrix is a segment of rows that the AVX kernel
// streams as 4 quarters at once (matVec4). Taking the segment a piece at a
// time, each piece the next steps of all 4 quarters (kernels.MatVecSteps), keeps
// its streams running from one piece into the next: the rows come at the
// kernel's full speed while nobody steals. A thread done with its own
// segments steals small pieces from the far end of another's, last
// segment first: 4 new streams per piece, but the thief would be idle
// otherwise. The owner claims from the front and the thief from the back
// of one word (stealCounter), so each step is done once.
//
// Why: with one fixed chunk per thread, the threads rarely get equal
// shares of the memory within one product, and the first to finish
// waits: with 2 threads on the Zen 5 VM the caller waited 11-17% of the
// time on stories110M (and in the VM's slow spells the other vCPU can
// fall far behind). Generation at 2 threads there, tok/s, medians of 5
// alternated runs of `llama2 bench -n 128`: stories110M fp32 99.2 ->
// 106.6, stories42M 237 -> 301, TinyLlama-shaped (tg32, 4 runs) 11.6 ->
// 12.3; with plans on and off interleaved in one process, 1.04-1.11x.
//
// Only Session.Forward's float32 products use plans. The same scheme over
// resident Q8_0 panels (a steps twin of matVecPanelQ8_0VNNI) gained
// nothing, 1.00x on stories110M and TinyLlama and 0.92-0.96x on
// stories42M: those kernels already read 88-96% of the bandwidth at 2
// threads. A Batch's steps keep the rows' split: a sequence alone must get
// the logits it gets beside others, and those come from kernels.MatMat.
type stealPlan struct {
	x       []float32 // the vector every row multiplies
	threads int
	segs    [][]segment // per thread, in the order it runs them
}

// segment is one thread's rows of a float32 tensor: 4 quarters of q rows
// that matVec4 streams side by side, then the last rows one at a time
// (steps q to steps()-1).
type segment struct {
	w   []float32 // the rows, len(out) of len(x) floats
	out []float32
	q   int
	own int           // steps the owner claims at a time
	ctr atomic.Uint64 // stealCounter
	_   [64 - 8]byte  // the counter's line is the owner's until a thief comes
	// steal is the steps a thief claims at a time.
	steal int
}

// Pieces, in bytes of weights: each of the owner's claims costs an atomic
// add and a kernel call, each of the thief's restarts 4 streams. On the
// Zen 5 VM (stories110M fp32, 2 threads, tok/s against no stealing,
// medians of 6 rounds interleaved in one process) 128/32 KiB gave 1.106x,
// 512/32 1.089x, 2048/32 1.069x, 512/16 1.082x, 512/64 1.086x: all
// within the noise of each other, and 32/32 only 1.008x.
const (
	ownPieceBytes   = 128 << 10
	stealPieceBytes = 32 << 10
)

// stealable reports whether t's products can go through a plan: float32
// weights, where kernels.MatVec's row values do not depend on the split.
func stealable(t *tensor) bool { return t.f != nil && kernels.MatVecRowInvariant() }

// reset empties the plan for a product of x by the weights of threads.
func (p *stealPlan) reset(threads int, x []float32) {
	p.x, p.threads = x, threads
	if len(p.segs) < threads {
		p.segs = make([][]segment, threads)
	}
	for t := range p.segs {
		p.segs[t] = p.segs[t][:0]
	}
}

// add splits out = t·x (t has len(out) rows and is stealable) between the
// threads in rows of multiples of rowGrain, so that no two threads' own
// rows share a cache line of out.
func (p *stealPlan) add(out []float32, t *tensor) {
	n, rows := t.cols, len(out)
	grains := (rows + rowGrain - 1) / rowGrain
	for th := range p.threads {
		lo := min(grains*th/p.threads*rowGrain, rows)
		hi := min(grains*(th+1)/p.threads*rowGrain, rows)
		if lo == hi {
			continue
		}
		p.segs[th] = append(p.segs[th], segment{})
		s := &p.segs[th][len(p.segs[th])-1]
		s.w, s.out, s.q = t.f[lo*n:hi*n], out[lo:hi], (hi-lo)/4
		s.own = max(1, ownPieceBytes/(16*n))
		s.steal = max(1, stealPieceBytes/(16*n))
		s.ctr.Store(newStealCounter(s.steps()))
	}
}

// steps is the segment's claimable steps: q of 4 rows, then its last rows
// one at a time.
func (s *segment) steps() int { return len(s.out) - 3*s.q }

// run computes steps [a, b) of the segment.
func (s *segment) run(x []float32, a, b int) {
	if e := min(b, s.q); a < e {
		kernels.MatVecSteps(s.out, s.w, x, s.q, a, e)
	}
	if a, b := max(a, s.q)+3*s.q, b+3*s.q; a < b {
		n := len(x)
		kernels.MatVec(s.out[a:b], s.w[a*n:b*n], x)
	}
}

// work is thread th's part: its own segments, then pieces of the others'.
func (p *stealPlan) work(th int) {
	for i := range p.segs[th] {
		s := &p.segs[th][i]
		for {
			a, b := claimFront(&s.ctr, s.own)
			if a >= b {
				break
			}
			s.run(p.x, a, b)
		}
	}
	for v := 1; v < p.threads; v++ {
		segs := p.segs[(th+v)%p.threads]
		for i := len(segs) - 1; i >= 0; i-- {
			s := &segs[i]
			for {
				a, b := claimBack(&s.ctr, s.steal)
				if a >= b {
					break
				}
				s.run(p.x, a, b)
			}
		}
	}
}

// A stealCounter holds, in one word, the next step the owner will claim
// (low 32 bits, counting up from 0) and the end of what is left for a
// thief (high 32 bits, an int32 counting down from the segment's steps).
// Both claims are one atomic add on the word, so they are totally ordered:
// each returns the part of its piece the other had not claimed before it.
// A claim that gets nothing means every step is claimed; neither side
// claims again, so the halves stay far from overflowing.
func newStealCounter(steps int) uint64 { return uint64(steps) << 32 }

// claimFront claims up to k steps from the front: [a, b), empty if a >= b.
func claimFront(c *atomic.Uint64, k int) (a, b int) {
	v := c.Add(uint64(k))
	a = int(uint32(v)) - k
	return a, min(a+k, int(int32(v>>32)))
}

// claimBack claims up to k steps from the back: [a, b), empty if a >= b.
func claimBack(c *atomic.Uint64, k int) (a, b int) {
	v := c.Add(-uint64(k) << 32)
	b = int(int32(v>>32)) + k
	return max(b-k, int(uint32(v))), b
}

// planner runs products through a steal plan on a pool.
type planner struct {
	plan stealPlan
	pool *pool
	body func(lo, hi int) // runs the plan's threads [lo, hi)
}

// newPlanner returns a planner for p, or nil where plans do not pay or
// cannot keep the values: one thread, or kernels.MatVec's row values depend on the
// split.
func newPlanner(p *pool) *planner {
	if p.threads() == 1 || !kernels.MatVecRowInvariant() {
		return nil
	}
	pl := &planner{pool: p}
	pl.body = func(lo, hi int) {
		for t := lo; t < hi; t++ {
			pl.plan.work(t)
		}
	}
	return pl
}

// product is one output and the tensor whose rows compute it.
type product struct {
	out []float32
	t   *tensor
}

// run computes every product's out = t·x through the plan, and reports
// whether it did: false, with nothing done, when pl is nil or a tensor is
// not stealable.
func (pl *planner) run(x []float32, ps ...product) bool {
	if pl == nil {
		return false
	}
	for _, p := range ps {
		if !stealable(p.t) {
			return false
		}
	}
	pl.plan.reset(pl.pool.threads(), x)
	for _, p := range ps {
		pl.plan.add(p.out, p.t)
	}
	pl.pool.run(pl.plan.threads, 1, pl.body)
	return true
}
