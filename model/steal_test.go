package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/stretchr/testify/require"
)

// claimAll runs an owner (from the front, k steps at a time) and a thief
// (from the back, j at a time) over a counter of steps, concurrently, and
// returns how often each step was claimed.
func claimAll(steps, k, j int) []int32 {
	var c atomic.Uint64
	c.Store(newStealCounter(steps))
	hits := make([]int32, steps)
	var wg sync.WaitGroup
	claim := func(f func(*atomic.Uint64, int) (int, int), n int) {
		defer wg.Done()
		for {
			a, b := f(&c, n)
			if a >= b {
				return
			}
			for s := a; s < b; s++ {
				atomic.AddInt32(&hits[s], 1)
			}
		}
	}
	wg.Add(2)
	go claim(claimFront, k)
	go claim(claimBack, j)
	wg.Wait()
	return hits
}

// TestStealClaims: the owner's and the thief's claims cover every step
// exactly once, however they interleave.
func TestStealClaims(t *testing.T) {
	var c atomic.Uint64
	c.Store(newStealCounter(10))
	a, b := claimFront(&c, 4)
	require.Equal(t, [2]int{0, 4}, [2]int{a, b})
	a, b = claimBack(&c, 3)
	require.Equal(t, [2]int{7, 10}, [2]int{a, b})
	a, b = claimBack(&c, 5)
	require.Equal(t, [2]int{4, 7}, [2]int{a, b}, "the thief stops at the owner's claims")
	a, b = claimFront(&c, 4)
	require.GreaterOrEqual(t, a, b, "nothing is left")
	a, b = claimBack(&c, 5)
	require.GreaterOrEqual(t, a, b, "nothing is left")

	c.Store(newStealCounter(0))
	a, b = claimBack(&c, 2)
	require.GreaterOrEqual(t, a, b, "no steps")

	for _, steps := range []int{1, 2, 7, 100, 1000} {
		for _, kj := range [][2]int{{1, 1}, {3, 1}, {8, 2}, {1, 5}, {200, 1}} {
			for range 20 {
				for s, h := range claimAll(steps, kj[0], kj[1]) {
					require.EqualValues(t, 1, h, "steps %d pieces %v: step %d", steps, kj, s)
				}
			}
		}
	}
}

// TestMatVecSteps: any piece of the pass of 4 rows a quarter apart gives
// the rows kernels.MatVec's values, bit for bit where kernels.MatVec's row values do not
// depend on the rows around (else within rounding), on odd widths and row
// counts.
// TestStealPlan runs plans over several products with 1 to 4 threads,
// with the threads in every order one after another (the last to run finds
// its segments stolen) and at once on a pool: every row gets kernels.MatVec's value
// bit for bit.
func TestStealPlan(t *testing.T) {
	if !kernels.MatVecRowInvariant() {
		t.Skip("kernels.MatVec's row values depend on the split here: plans are off")
	}
	r := rand.New(rand.NewPCG(11, 12))
	type product struct {
		t   tensor
		x   []float32
		out []float32
	}
	newProducts := func(n int, rows ...int) []product {
		x := randomFloats(r, n)
		var ps []product
		for _, m := range rows {
			ps = append(ps, product{t: tensor{rows: m, cols: n, f: randomFloats(r, m*n)}, x: x, out: make([]float32, m)})
		}
		return ps
	}
	check := func(ps []product, msg string) {
		t.Helper()
		for i, p := range ps {
			want := make([]float32, p.t.rows)
			kernels.MatVec(want, p.t.f, p.x)
			for row := range want {
				require.Equal(t, math.Float32bits(want[row]), math.Float32bits(p.out[row]), "%s: product %d row %d", msg, i, row)
			}
			clear(p.out)
		}
	}
	var plan stealPlan
	fill := func(ps []product, threads int) {
		plan.reset(threads, ps[0].x)
		for i := range ps {
			plan.add(ps[i].out, &ps[i].t)
		}
	}
	shapes := [][]int{{1}, {5}, {37, 100}, {768, 96, 96}, {2048}, {16, 17, 33}}
	for _, n := range []int{3, 64, 771} {
		for _, rows := range shapes {
			ps := newProducts(n, rows...)
			for threads := 1; threads <= 4; threads++ {
				for first := range threads {
					fill(ps, threads)
					plan.work(first)
					for th := range threads {
						plan.work(th)
					}
					check(ps, fmt.Sprintf("n %d rows %v threads %d, thread %d first", n, rows, threads, first))
				}
				p := newPool(threads)
				for range 10 {
					fill(ps, threads)
					p.run(threads, 1, func(lo, hi int) {
						for th := lo; th < hi; th++ {
							plan.work(th)
						}
					})
					check(ps, fmt.Sprintf("n %d rows %v threads %d on the pool", n, rows, threads))
				}
				p.close()
			}
		}
	}
}

// TestForwardThreadsAgree: with float32 weights, a session on 2 or 3
// threads (products through steal plans) gives exactly the logits of one
// on 1 thread, and so does one with the plans switched off.
func TestForwardThreadsAgree(t *testing.T) {
	c := Config{Dim: 64, HiddenDim: 172, Layers: 2, Heads: 8, KVHeads: 4, VocabSize: 301, SeqLen: 12}
	m := openModel(t, writeCheckpoint(t, c, 13))
	one := newSession(t, m, 1)
	two, three := newSession(t, m, 2), newSession(t, m, 3)
	if kernels.MatVecRowInvariant() {
		require.NotNil(t, two.planner)
	}
	require.Nil(t, one.planner)
	r := rand.New(rand.NewPCG(3, 4))
	for pos := range c.SeqLen {
		tok := r.IntN(c.VocabSize)
		want, err := one.Forward(tok, pos)
		require.NoError(t, err)
		want = append([]float32(nil), want...)
		for _, s := range []*Session{two, three} {
			got, err := s.Forward(tok, pos)
			require.NoError(t, err)
			require.Equal(t, want, got, "position %d, %d threads", pos, s.pool.threads())
		}
	}
}
