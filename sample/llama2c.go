package sample

import (
	"cmp"
	"slices"
	"time"

	"github.com/llama2-go/llama2/internal/kernels"
)

// Sampler picks the next token from logits: made by [New], exactly as
// llama2.c's run.c does, so that a seed reproduces run.c's story (argmax at
// temperature 0, otherwise softmax of logits/temperature and one draw of
// run.c's xorshift* generator, over the whole distribution or its top-p
// nucleus); made by [NewChain], with llama.cpp's chain of samplers.
//
// A nil *Sampler is greedy: it returns the first largest logit.
//
// A Sampler is used by one goroutine at a time, for one generation.
type Sampler struct {
	temperature float32
	topp        float32
	rng         uint64
	probIndex   []probIndex // scratch for top-p sorting, allocated once
	chain       *chain      // nil: run.c's sampler
}

// Temperatures outside [MinTemperature, MaxTemperature] are taken as
// greedy (below) or as MaxTemperature (above). Below 1e-6 the softmax of
// logits/temperature puts all its mass on the largest logit unless two are
// within a millionth of each other, and below about 1e-38 logits/temperature
// overflows to +Inf, whose softmax is NaN (run.c then emits token 0
// forever). Above 1e6 any logits a model makes are within 1e-4 of each
// other after the division: the distribution is uniform however much
// larger the temperature is, and +Inf would turn logits into NaN.
const (
	MinTemperature = 1e-6
	MaxTemperature = 1e6
)

// clampTemperature maps a temperature to what the samplers use: 0 for
// greedy (NaN, negative, or below MinTemperature), at most MaxTemperature.
func clampTemperature(t float32) float32 {
	switch {
	case !(t >= MinTemperature): // NaN too
		return 0
	case t > MaxTemperature:
		return MaxTemperature
	}
	return t
}

type probIndex struct {
	prob  float32
	index int
}

// New returns run.c's sampler for logits of vocabSize tokens. It takes
// its arguments as run.c's command line does and never fails: a
// temperature of 0 or below (or NaN, or below MinTemperature) picks the
// most likely token, one above MaxTemperature is MaxTemperature; topp
// outside (0, 1) (or NaN) samples the whole distribution. A seed of 0
// seeds from the clock, as run.c does. vocabSize only sizes a buffer
// ahead of time (0 or less: on first use). [NewChain] reports bad values
// as errors instead.
func New(vocabSize int, temperature, topp float32, seed uint64) *Sampler {
	if seed == 0 {
		seed = uint64(uint32(time.Now().Unix()))
	}
	if !(topp > 0 && topp < 1) {
		topp = 0 // the whole distribution, as topp >= 1 is in run.c
	}
	return &Sampler{
		temperature: clampTemperature(temperature),
		topp:        topp,
		rng:         seed,
		probIndex:   make([]probIndex, max(vocabSize, 0)),
	}
}

// Start tells the sampler that a generation begins after prompt: a
// chain's repetition penalty looks at the prompt's last tokens, and its
// presence and frequency penalties count the tokens sampled from here on.
// run.c's sampler has no history; for it Start does nothing.
func (s *Sampler) Start(prompt []int) {
	if s != nil && s.chain != nil {
		s.chain.start(prompt)
	}
}

// Sample returns the next token. run.c's sampler overwrites logits with
// probabilities unless it is greedy; a chain leaves them as they are.
// Logits of -Inf (tokens a grammar forbids) are never picked, unless all
// are.
func (s *Sampler) Sample(logits []float32) int {
	if s == nil {
		return Argmax(logits)
	}
	if s.chain != nil {
		return s.chain.sample(s, logits)
	}
	if s.temperature == 0 {
		return Argmax(logits)
	}
	for i := range logits {
		logits[i] /= s.temperature
	}
	kernels.Softmax(logits)
	coin := s.randomF32()
	if s.topp <= 0 || s.topp >= 1 {
		return sampleMult(logits, coin)
	}
	return s.sampleTopP(logits, coin)
}

// randomU32 is run.c's xorshift* generator.
func (s *Sampler) randomU32() uint32 {
	s.rng ^= s.rng >> 12
	s.rng ^= s.rng << 25
	s.rng ^= s.rng >> 27
	return uint32((s.rng * 0x2545F4914F6CDD1D) >> 32)
}

// randomF32 is a float in [0, 1) with 24 random bits.
func (s *Sampler) randomF32() float32 {
	return float32(s.randomU32()>>8) / 16777216
}

// Argmax returns the index of the first largest value.
func Argmax(p []float32) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// sampleMult samples an index from probabilities p with coin in [0, 1).
func sampleMult(p []float32, coin float32) int {
	var cdf float32
	for i, v := range p {
		cdf += v
		if coin < cdf {
			return i
		}
	}
	return len(p) - 1 // rounding errors
}

// sampleTopP samples from the smallest set of most likely tokens whose
// probabilities exceed topp (nucleus sampling), with run.c's arithmetic.
func (s *Sampler) sampleTopP(p []float32, coin float32) int {
	// Tokens below the cutoff cannot be in the nucleus; dropping them first
	// makes the sort cheap.
	cutoff := (1 - s.topp) / float32(len(p)-1)
	if cap(s.probIndex) < len(p) {
		s.probIndex = make([]probIndex, len(p))
	}
	candidates := s.probIndex[:0]
	for i, v := range p {
		if v >= cutoff {
			candidates = append(candidates, probIndex{v, i})
		}
	}
	if len(candidates) == 0 {
		// Only when n*topp < 1 with a near-uniform p, or with NaNs: run.c
		// reads out of bounds here; the most likely token is the sane answer.
		return Argmax(p)
	}
	// Descending probability; equal probabilities in index order, so the
	// result does not depend on the sort algorithm.
	slices.SortFunc(candidates, func(a, b probIndex) int {
		if c := cmp.Compare(b.prob, a.prob); c != 0 {
			return c
		}
		return cmp.Compare(a.index, b.index)
	})
	var cumulative float32
	last := len(candidates) - 1
	for i, c := range candidates {
		cumulative += c.prob
		if cumulative > s.topp {
			last = i
			break
		}
	}
	r := coin * cumulative
	var cdf float32
	for _, c := range candidates[:last+1] {
		cdf += c.prob
		if r < cdf {
			return c.index
		}
	}
	return candidates[last].index
}
