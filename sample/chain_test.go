package sample

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// refChain is the chain written directly from Params' definition: sort
// every token, cut, then draw, in float64.
type refChain struct {
	p       Params
	recent  []int
	sampled map[int]int
}

func (r *refChain) kept(logits []float32) []cand {
	l := make([]float64, len(logits))
	for i, v := range logits {
		l[i] = float64(v)
	}
	for id, b := range r.p.LogitBias {
		l[id] += float64(b)
	}
	if rp := float64(r.p.RepeatPenalty); rp > 0 && rp != 1 {
		n := r.p.RepeatLastN
		if n == 0 {
			n = DefaultRepeatLastN
		}
		if n < 0 || n > len(r.recent) {
			n = len(r.recent)
		}
		seen := map[int]bool{}
		for _, id := range r.recent[len(r.recent)-n:] {
			if seen[id] {
				continue
			}
			seen[id] = true
			if l[id] <= 0 {
				l[id] = float64(float32(l[id]) * float32(rp))
			} else {
				l[id] = float64(float32(l[id]) / float32(rp))
			}
		}
	}
	for id, n := range r.sampled {
		l[id] = float64(float32(l[id]) - (float32(n)*r.p.FrequencyPenalty + r.p.PresencePenalty))
	}
	var cs []cand
	for id, v := range l {
		if !math.IsInf(v, -1) {
			cs = append(cs, cand{float32(v), int32(id)})
		}
	}
	// Selection-free definition: sort everything.
	slices.SortFunc(cs, compareCands)
	if clampTemperature(r.p.Temperature) == 0 {
		return cs[:1]
	}
	if k := r.p.TopK; k > 0 && k < len(cs) {
		cs = cs[:k]
	}
	if p := float64(r.p.TopP); p > 0 && p < 1 {
		var z float64
		for _, x := range cs {
			z += math.Exp(float64(x.logit - cs[0].logit))
		}
		var cum float64
		for i, x := range cs {
			cum += math.Exp(float64(x.logit-cs[0].logit)) / z
			if cum >= p {
				cs = cs[:i+1]
				break
			}
		}
	}
	if mp := float64(r.p.MinP); mp > 0 {
		var out []cand
		for _, x := range cs {
			if math.Exp(float64(x.logit-cs[0].logit)) >= mp {
				out = append(out, x)
			}
		}
		cs = out
	}
	return cs
}

// draw picks from kept in id order with probabilities softmax(l/T).
func (r *refChain) draw(kept []cand, coin float64) int {
	id, _ := r.drawMargin(kept, coin)
	return id
}

// drawMargin is draw and how far coin is from the nearest boundary of the
// cumulative distribution: the samplers compute the weights with float32
// exponentials (SIMD, or their pure-Go twins), within about 1e-6 of these,
// so a coin closer than that may fall on either side.
func (r *refChain) drawMargin(kept []cand, coin float64) (int, float64) {
	kept = slices.Clone(kept)
	slices.SortFunc(kept, func(a, b cand) int { return int(a.id - b.id) })
	t := float64(clampTemperature(r.p.Temperature))
	m := maxLogit(kept)
	var z float64
	for _, x := range kept {
		z += math.Exp((float64(x.logit) - float64(m)) / t)
	}
	var cdf float64
	margin := coin
	for _, x := range kept {
		cdf += math.Exp((float64(x.logit)-float64(m))/t) / z
		margin = min(margin, math.Abs(cdf-coin))
		if coin < cdf {
			return int(x.id), margin
		}
	}
	return int(kept[len(kept)-1].id), margin
}

// drawTolerance is the margin below which a draw is not compared.
const drawTolerance = 1e-5

func maxLogit(cs []cand) float32 {
	m := cs[0].logit
	for _, x := range cs[1:] {
		m = max(m, x.logit)
	}
	return m
}

// filterIDs runs c's filter on a copy of c (filter keeps its scratch in
// c) and returns the tokens kept, in id order, as candidates.
func filterCands(c *chain, logits []float32) []cand {
	cc := *c
	cc.vals, cc.cands, cc.exps, cc.edge = nil, nil, nil, nil
	v, kept, ok := cc.filter(slices.Clone(logits))
	if !ok {
		return nil
	}
	if kept != nil {
		return slices.Clone(kept)
	}
	var out []cand
	for i, x := range v {
		if x > negInf {
			out = append(out, cand{x, int32(i)})
		}
	}
	return out
}

func ids(cs []cand) []int {
	out := make([]int, len(cs))
	for i, c := range cs {
		out[i] = int(c.id)
	}
	slices.Sort(out)
	return out
}

func randomParams(r *rand.Rand, n int) Params {
	p := Params{Temperature: []float32{0, 0.5, 1, 1.7}[r.IntN(4)], Seed: r.Uint64() | 1}
	if r.IntN(2) == 0 {
		p.TopK = 1 + r.IntN(n)
	}
	if r.IntN(2) == 0 {
		p.TopP = r.Float32()
	}
	if r.IntN(2) == 0 {
		p.MinP = r.Float32() * 0.3
	}
	if r.IntN(2) == 0 {
		p.RepeatPenalty, p.RepeatLastN = 1+r.Float32(), []int{0, -1, 3}[r.IntN(3)]
	}
	if r.IntN(2) == 0 {
		p.PresencePenalty, p.FrequencyPenalty = r.Float32()*2-1, r.Float32()*2-1
	}
	if r.IntN(2) == 0 {
		p.LogitBias = map[int]float32{r.IntN(n): r.Float32()*20 - 10, r.IntN(n): float32(math.Inf(-1))}
	}
	return p
}

func randomLogits(r *rand.Rand, n int, distinct int) []float32 {
	l := make([]float32, n)
	for i := range l {
		if distinct > 0 {
			l[i] = float32(r.IntN(distinct)) // ties
		} else {
			l[i] = float32(r.NormFloat64() * 3)
		}
	}
	return l
}

// TestChainMatchesReference runs the chain and the reference side by side
// over random logits, parameters and histories: the same candidates kept at
// every step, the same token drawn.
func TestChainMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 400 {
		n := []int{2, 7, 50, 300, 5000}[trial%5]
		p := randomParams(r, n)
		s, err := NewChain(n, p)
		require.NoError(t, err)
		coins := New(n, 1, 0, p.Seed) // the same xorshift* stream
		prompt := make([]int, r.IntN(10))
		for i := range prompt {
			prompt[i] = r.IntN(n)
		}
		s.Start(prompt)
		ref := &refChain{p: p, recent: slices.Clone(prompt), sampled: map[int]int{}}
		for step := range 6 {
			logits := randomLogits(r, n, []int{0, 4}[trial%2])
			in := slices.Clone(logits)
			want := ref.kept(logits)
			got := filterCands(s.chain, logits)
			require.Equal(t, ids(want), ids(got), "trial %d step %d %+v", trial, step, p)
			id := s.Sample(logits)
			require.Equal(t, in, logits, "a chain leaves the logits as they are")
			wantID, margin := int(want[0].id), 1.0
			if clampTemperature(p.Temperature) > 0 {
				wantID, margin = ref.drawMargin(want, float64(coins.randomF32()))
			}
			if margin > drawTolerance {
				require.Equal(t, wantID, id, "trial %d step %d", trial, step)
			}
			ref.recent = append(ref.recent, id)
			ref.sampled[id]++
		}
	}
}

// TestChainDraw: the draw over the kept candidates picks what the
// reference's walk in id order picks.
func TestChainDraw(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 100 {
		n := 1 + r.IntN(8000)
		logits := randomLogits(r, n, 0)
		p := Params{Temperature: []float32{0.3, 1, 2}[trial%3], TopK: r.IntN(n+1) * (trial % 2), Seed: 1}
		s, err := NewChain(n, p)
		require.NoError(t, err)
		c := s.chain
		kept := filterCands(c, logits)
		ref := &refChain{p: p}
		for range 20 {
			coin := r.Float64()
			want, margin := ref.drawMargin(kept, coin)
			if margin <= drawTolerance {
				continue
			}
			v, cs, _ := c.filter(logits)
			if cs == nil {
				require.Equal(t, want, c.drawDense(v, coin), "dense")
			} else {
				require.Equal(t, want, c.drawSparse(cs, coin), "sparse")
			}
		}
	}
}

// TestDrawManyIsDense: for many candidates the vocabulary-sized draw
// picks what drawDense picks over the logits with the tokens not kept at
// -Inf, for every coin, including coins at the very top of the range,
// where rounding may leave the sum short (the last candidate by id); and
// the sorted float64 draw's token unless the coin is within a rounding of
// a boundary.
func TestDrawManyIsDense(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 60 {
		n := 1 + r.IntN(5000)
		p := Params{Temperature: []float32{0.3, 0.8, 2}[trial%3], TopP: []float32{0.5, 0.9, 1}[trial%3], Seed: 1}
		s, err := NewChain(n, p)
		require.NoError(t, err)
		c := s.chain
		logits := randomLogits(r, n, 0)
		for i := range logits {
			logits[i] *= 0.05 // flat, as a random model's: most tokens stay
		}
		_, cs, ok := c.filter(logits)
		require.True(t, ok)
		if cs == nil {
			continue
		}
		masked := make([]float32, n)
		for i := range masked {
			masked[i] = negInf
		}
		for _, x := range cs {
			masked[x.id] = logits[x.id]
		}
		coins := []float64{0, 1 - 1e-16, math.Nextafter(1, 0)}
		for range 30 {
			coins = append(coins, r.Float64())
		}
		sparseDiffers := 0
		for _, coin := range coins {
			many := c.drawMany(append([]cand(nil), cs...), coin, n)
			dense := c.drawDense(slices.Clone(masked), coin)
			require.Equal(t, dense, many, "trial %d: n=%d kept=%d coin=%v", trial, n, len(cs), coin)
			// drawSparse's sorted way, forced by a vocabulary it thinks large.
			saved := c.vals
			c.vals = make([]float32, manyCands*(len(cs)+1))
			if c.drawSparse(append([]cand(nil), cs...), coin) != many {
				sparseDiffers++
			}
			c.vals = saved
		}
		require.LessOrEqual(t, sparseDiffers, 1, "trial %d: the float64 draw differs for %d coins", trial, sparseDiffers)
	}
}

// TestChainOrder pins where each sampler sits in the chain.
func TestChainOrder(t *testing.T) {
	kept := func(p Params, logits []float32, prompt []int) []int {
		s, err := NewChain(len(logits), p)
		require.NoError(t, err)
		s.Start(prompt)
		return ids(filterCands(s.chain, logits))
	}
	logits := []float32{4, 3, 2, 1, 0}
	// Top-k before top-p: top-p's mass is over the k kept.
	require.Equal(t, []int{0}, kept(Params{Temperature: 1, TopK: 2, TopP: 0.7}, logits, nil))
	require.Equal(t, []int{0, 1}, kept(Params{Temperature: 1, TopP: 0.7}, logits, nil))
	// Temperature after the cuts: it does not change what top-p keeps.
	for _, temp := range []float32{0.1, 1, 10} {
		require.Equal(t, []int{0, 1}, kept(Params{Temperature: temp, TopP: 0.7}, logits, nil), "T=%g", temp)
	}
	// Penalties before the cuts: a penalised token falls out of the top 2.
	require.Equal(t, []int{1, 2}, kept(Params{Temperature: 1, TopK: 2, RepeatPenalty: 4}, logits, []int{0}))
	require.Equal(t, []int{0, 1}, kept(Params{Temperature: 1, TopK: 2, RepeatPenalty: 4, RepeatLastN: 1}, logits, []int{0, 3}),
		"only the last token is in a window of 1")
	// Bias before the penalties and cuts.
	require.Equal(t, []int{3, 4}, kept(Params{Temperature: 1, TopK: 2, LogitBias: map[int]float32{3: 10, 4: 10}}, logits, nil))
	// Min-p relative to the most likely token left.
	require.Equal(t, []int{0, 1}, kept(Params{Temperature: 1, MinP: 0.3}, logits, nil))
	// Greedy after the penalties.
	s, err := NewChain(5, Params{PresencePenalty: 2})
	require.NoError(t, err)
	s.Start(nil)
	require.Equal(t, 0, s.Sample(slices.Clone(logits)))
	require.Equal(t, 1, s.Sample(slices.Clone(logits)), "token 0 was sampled: 4-2 < 3")
	require.Equal(t, 0, s.Sample(slices.Clone(logits)), "1 was too: 4-2 = 2 > 3-2 = 1")
}

func TestChainForbiddenTokens(t *testing.T) {
	inf := float32(math.Inf(-1))
	for _, temp := range []float32{0, 1} {
		s, err := NewChain(4, Params{Temperature: temp, Seed: 3})
		require.NoError(t, err)
		for range 100 {
			id := s.Sample([]float32{5, inf, 1, inf})
			require.Contains(t, []int{0, 2}, id)
		}
		require.Equal(t, 0, s.Sample([]float32{inf, inf, inf, inf}), "nothing allowed: token 0, not a panic")
	}
}

func TestParamsValidate(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		p     Params
		field string
	}{
		{Params{Temperature: nan}, "Temperature"},
		{Params{Temperature: inf}, "Temperature"},
		{Params{Temperature: -1}, "Temperature"},
		{Params{TopK: -1}, "TopK"},
		{Params{TopP: 1.5}, "TopP"},
		{Params{TopP: nan}, "TopP"},
		{Params{MinP: -0.1}, "MinP"},
		{Params{RepeatPenalty: nan}, "RepeatPenalty"},
		{Params{RepeatPenalty: -2}, "RepeatPenalty"},
		{Params{RepeatLastN: -2}, "RepeatLastN"},
		{Params{PresencePenalty: inf}, "PresencePenalty"},
		{Params{FrequencyPenalty: nan}, "FrequencyPenalty"},
		{Params{LogitBias: map[int]float32{10: 1}}, "LogitBias"},
		{Params{LogitBias: map[int]float32{-1: 1}}, "LogitBias"},
		{Params{LogitBias: map[int]float32{1: nan}}, "LogitBias"},
	} {
		_, err := NewChain(10, tc.p)
		require.ErrorIs(t, err, ErrParams, "%+v", tc.p)
		require.ErrorContains(t, err, "Params."+tc.field)
	}
	_, err := NewChain(-1, Params{})
	require.ErrorIs(t, err, ErrParams)
	_, err = NewChain(10, Params{Temperature: 1e30, TopP: 1, MinP: 1, LogitBias: map[int]float32{9: float32(math.Inf(-1))}})
	require.NoError(t, err)
}

// TestTemperatureExtremes: tiny temperatures are greedy, huge ones clamp
// (issue 30, defect 6: 1e-40 gave token 0 forever, +Inf uniform noise).
func TestTemperatureExtremes(t *testing.T) {
	logits := func() []float32 { return []float32{-3, 1, 9, 2, 8.5} }
	for _, temp := range []float32{1e-45, 1e-40, 1e-38, 1e-7} {
		for _, s := range []*Sampler{New(5, temp, 0.9, 7), New(5, temp, 1, 7), must(NewChain(5, Params{Temperature: temp, Seed: 7}))} {
			for range 20 {
				require.Equal(t, 2, s.Sample(logits()), "T=%g", temp)
			}
		}
	}
	require.Equal(t, float32(MaxTemperature), New(5, float32(math.Inf(1)), 1, 1).temperature)
	require.Equal(t, float32(MaxTemperature), must(NewChain(5, Params{Temperature: 1e38})).chain.temperature)
	// Clamped, the draw still works: every token comes up, and no NaN
	// turns into token 0 or the last token every time.
	seen := map[int]bool{}
	s := New(5, float32(math.Inf(1)), 1, 3)
	for range 200 {
		seen[s.Sample(logits())] = true
	}
	require.Len(t, seen, 5)
	require.Equal(t, float32(0), New(5, float32(math.NaN()), 0.9, 1).temperature, "NaN is greedy for run.c's lenient New")
}

func TestNewNegativeVocab(t *testing.T) {
	for _, n := range []int{-1, 0} {
		s := New(n, 1, 0.9, 1)
		id := s.Sample([]float32{1, 2, 3, 4})
		require.True(t, id >= 0 && id < 4)
	}
	var nilSampler *Sampler
	require.Equal(t, 2, nilSampler.Sample([]float32{0, 1, 5, 5}), "nil is greedy")
	nilSampler.Start([]int{1})
}

func must(s *Sampler, err error) *Sampler {
	if err != nil {
		panic(err)
	}
	return s
}

func TestLogprobs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{1, 5, 33, 1000} {
		logits := randomLogits(r, n, 0)
		scratch := make([]float32, n)
		lse := LogSumExp(logits, scratch)
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l))
		}
		require.InDelta(t, math.Log(z), float64(lse), 1e-5*math.Max(1, math.Abs(math.Log(z))))
		top := TopLogprobs(nil, logits, lse, 20)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int {
			switch {
			case logits[a] > logits[b]:
				return -1
			case logits[a] < logits[b]:
				return 1
			}
			return 0
		})
		require.Len(t, top, min(n, 20))
		for i, lp := range top {
			require.Equal(t, order[i], lp.ID)
			require.Equal(t, logits[lp.ID]-lse, lp.Logprob)
		}
	}
	require.Empty(t, TopLogprobs(nil, []float32{1}, 0, 0))
}

func BenchmarkSample(b *testing.B) {
	for _, n := range []int{32000, 128256, 151936} {
		r := rand.New(rand.NewPCG(1, uint64(n)))
		logits := make([]float32, n)
		for i := range logits {
			// A trained model's logits: most tokens far below a few.
			logits[i] = float32(r.NormFloat64()*2.5 - 5)
		}
		for i := range 20 {
			logits[r.IntN(n)] = float32(8 + i%5)
		}
		// A random model's: flat, so that top-p keeps most of them
		// (drawMany's way).
		flat := make([]float32, n)
		for i := range flat {
			flat[i] = float32(r.Float64()*8 - 4)
		}
		work := make([]float32, n)
		b.Run(fmt.Sprintf("vocab=%d/flat/chain-T0.8-p0.9", n), func(b *testing.B) {
			s := must(NewChain(n, Params{Temperature: 0.8, TopP: 0.9, Seed: 1}))
			s.Start(make([]int, 100))
			for b.Loop() {
				copy(work, flat)
				s.Sample(work)
			}
		})
		for _, tc := range []struct {
			name string
			s    *Sampler
		}{
			{"runc-greedy", New(n, 0, 0, 1)},
			{"runc-T0.8-p0.9", New(n, 0.8, 0.9, 1)},
			{"chain-greedy", must(NewChain(n, Params{}))},
			{"chain-T0.8-p0.95", must(NewChain(n, Params{Temperature: 0.8, TopP: 0.95, Seed: 1}))},
			{"chain-T1", must(NewChain(n, Params{Temperature: 1, Seed: 1}))},
			{"chain-k40-p0.95-minp0.05", must(NewChain(n, Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, Seed: 1}))},
			{"chain-all", must(NewChain(n, Params{Temperature: 0.8, TopK: 40, TopP: 0.95, MinP: 0.05, RepeatPenalty: 1.1,
				PresencePenalty: 0.5, FrequencyPenalty: 0.5, LogitBias: map[int]float32{5: 2}, Seed: 1}))},
		} {
			b.Run(fmt.Sprintf("vocab=%d/%s", n, tc.name), func(b *testing.B) {
				tc.s.Start(make([]int, 100))
				for b.Loop() {
					copy(work, logits)
					tc.s.Sample(work)
				}
			})
		}
	}
}
