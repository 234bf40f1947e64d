package sample

import (
	"math/rand/v2"
	"testing"

	"github.com/llama2-go/llama2/internal/kernels"
	"github.com/stretchr/testify/require"
)

// TestRandomMatchesRunC checks the xorshift* generator against values
// printed by run.c's random_u32 and random_f32 compiled with gcc.
func TestRandomMatchesRunC(t *testing.T) {
	s := New(4, 1, 0.9, 133742)
	for _, want := range []uint32{3033531262, 2674377904, 2312864567, 2287415643} {
		require.Equal(t, want, s.randomU32())
	}
	s = New(4, 1, 0.9, 42)
	for _, want := range []float32{0.339085221, 0.782255828, 0.790136993} {
		require.Equal(t, want, s.randomF32())
	}
}

func TestArgmaxTakesFirstMaximum(t *testing.T) {
	require.Equal(t, 1, Argmax([]float32{0, 3, 1, 3}))
	require.Equal(t, 0, Argmax([]float32{5}))
	s := New(4, 0, 0.9, 1)
	state := s.rng
	require.Equal(t, 2, s.Sample([]float32{-1, 0, 7, 7}))
	require.Equal(t, state, s.rng, "greedy sampling draws no random number")
}

func TestSampleMult(t *testing.T) {
	p := []float32{0.1, 0.2, 0.3, 0.4}
	require.Equal(t, 0, sampleMult(p, 0))
	require.Equal(t, 0, sampleMult(p, 0.09))
	require.Equal(t, 1, sampleMult(p, 0.1))
	require.Equal(t, 3, sampleMult(p, 0.999))
	require.Equal(t, 3, sampleMult([]float32{0.1, 0.1, 0.1, 0.1}, 0.9), "rounding falls back to the last")
}

// plainTopP is nucleus sampling written directly from its definition, with
// run.c's float32 arithmetic: sort all tokens by probability (ties by
// index), keep the shortest prefix whose sum exceeds topp, draw in it.
func plainTopP(p []float32, topp, coin float32) int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	for i := range idx { // selection sort: obviously correct
		for j := i + 1; j < len(idx); j++ {
			a, b := idx[i], idx[j]
			if p[b] > p[a] || (p[b] == p[a] && b < a) {
				idx[i], idx[j] = b, a
			}
		}
	}
	cutoff := (1 - topp) / float32(len(p)-1)
	var kept []int
	for _, i := range idx {
		if p[i] >= cutoff {
			kept = append(kept, i)
		}
	}
	if len(kept) == 0 {
		return idx[0] // documented fallback: the most likely token
	}
	var sum float32
	last := len(kept) - 1
	for k, i := range kept {
		sum += p[i]
		if sum > topp {
			last = k
			break
		}
	}
	r := coin * sum
	var cdf float32
	for _, i := range kept[:last+1] {
		cdf += p[i]
		if r < cdf {
			return i
		}
	}
	return kept[last]
}

func TestSampleTopPMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 500 {
		n := 2 + r.IntN(40)
		logits := make([]float32, n)
		for i := range logits {
			// Few distinct values, so ties are common.
			logits[i] = float32(r.IntN(5))
		}
		kernels.Softmax(logits)
		topp := []float32{0.5, 0.9, 0.99, 0.1}[trial%4]
		coin := r.Float32()
		s := New(n, 1, topp, 1)
		require.Equal(t, plainTopP(logits, topp, coin), s.sampleTopP(logits, coin), "trial %d", trial)
	}
}

func TestSampleTopPDegenerate(t *testing.T) {
	// With n*topp < 1 and a uniform distribution nothing passes the cutoff.
	s := New(512, 1, 0.001, 1)
	p := make([]float32, 512)
	for i := range p {
		p[i] = 1.0 / 512
	}
	require.Equal(t, 0, s.sampleTopP(p, 0.5))
	require.Equal(t, 0, New(1, 1, 0.9, 1).Sample([]float32{3}))
}

func TestSamplerSeedZeroUsesClock(t *testing.T) {
	require.NotZero(t, New(2, 1, 0.9, 0).rng)
}

func TestSampleDoesNotAllocate(t *testing.T) {
	logits := make([]float32, 1000)
	for _, topp := range []float32{0.9, 1} {
		s := New(len(logits), 0.8, topp, 7)
		allocs := testing.AllocsPerRun(20, func() {
			for i := range logits {
				logits[i] = float32(i % 17)
			}
			s.Sample(logits)
		})
		require.Zero(t, allocs)
	}
}
