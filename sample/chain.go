package sample

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/llama2-go/llama2/internal/kernels"
)

// ErrParams marks a sampling parameter that is out of range; the error
// names the field.
var ErrParams = errors.New("sample: invalid parameter")

// DefaultRepeatLastN is the window of the repetition penalty when
// Params.RepeatLastN is 0: llama.cpp's default.
const DefaultRepeatLastN = 64

// Params configures a chain of samplers ([NewChain]). The zero value is
// greedy with no penalties. The samplers run in llama.cpp's default order:
//
//  1. LogitBias is added to the logits.
//  2. RepeatPenalty divides the positive logits (multiplies the negative
//     ones) of the tokens among the last RepeatLastN tokens, the prompt's
//     included (llama.cpp's repeat_penalty); FrequencyPenalty times a
//     token's count and PresencePenalty once are subtracted from the
//     logits of the tokens sampled so far (OpenAI's definitions).
//  3. Temperature 0 picks the largest logit here; otherwise
//  4. TopK keeps the K largest logits,
//  5. TopP the fewest most likely tokens whose probabilities (softmax of
//     what is left) add up to at least TopP,
//  6. MinP the tokens at least MinP times as likely as the most likely one,
//  7. and one token is drawn from the softmax of the kept logits divided
//     by Temperature.
//
// Ties at a cut (top-k, top-p) keep the lower token id.
type Params struct {
	// Temperature divides the logits before the draw; 0 is greedy.
	// Below MinTemperature it is greedy too; above MaxTemperature it is
	// MaxTemperature.
	Temperature float32
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP is the nucleus' probability mass, in [0, 1]; 0 and 1 keep all.
	TopP float32
	// MinP drops tokens less likely than MinP times the most likely one,
	// in [0, 1]; 0 keeps all.
	MinP float32
	// RepeatPenalty (at least 0; 0 and 1 are off) penalises the tokens
	// among the last RepeatLastN (0 means DefaultRepeatLastN; -1 the whole
	// prompt and generation).
	RepeatPenalty float32
	RepeatLastN   int
	// PresencePenalty and FrequencyPenalty are subtracted from the logits
	// of sampled tokens, once and per occurrence (negative values favour
	// them).
	PresencePenalty, FrequencyPenalty float32
	// LogitBias adds a value to a token's logit (token ids within the
	// vocabulary; -Inf forbids a token).
	LogitBias map[int]float32
	// Seed seeds the draw (run.c's xorshift* generator); 0 seeds from the
	// clock.
	Seed uint64
}

func finite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

// Validate checks p for a vocabulary of vocabSize tokens. Errors wrap
// ErrParams and name the field.
func (p Params) Validate(vocabSize int) error {
	bad := func(field string, format string, args ...any) error {
		return fmt.Errorf("%w: Params.%s %s", ErrParams, field, fmt.Sprintf(format, args...))
	}
	switch {
	case vocabSize <= 0:
		return fmt.Errorf("%w: vocabulary size %d is not positive", ErrParams, vocabSize)
	case !finite(p.Temperature) || p.Temperature < 0:
		return bad("Temperature", "%g must be a number at least 0", p.Temperature)
	case p.TopK < 0:
		return bad("TopK", "%d must not be negative", p.TopK)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return bad("TopP", "%g is outside [0, 1]", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return bad("MinP", "%g is outside [0, 1]", p.MinP)
	case !finite(p.RepeatPenalty) || p.RepeatPenalty < 0:
		return bad("RepeatPenalty", "%g must be a number at least 0", p.RepeatPenalty)
	case p.RepeatLastN < -1:
		return bad("RepeatLastN", "%d must be -1 (all), 0 (default) or positive", p.RepeatLastN)
	case !finite(p.PresencePenalty):
		return bad("PresencePenalty", "%g is not a finite number", p.PresencePenalty)
	case !finite(p.FrequencyPenalty):
		return bad("FrequencyPenalty", "%g is not a finite number", p.FrequencyPenalty)
	}
	for id, b := range p.LogitBias {
		if id < 0 || id >= vocabSize {
			return bad("LogitBias", "names token %d, outside the vocabulary of %d tokens", id, vocabSize)
		}
		if math.IsNaN(float64(b)) || math.IsInf(float64(b), 1) {
			return bad("LogitBias", "for token %d is %g (a number or -Inf)", id, b)
		}
	}
	return nil
}

// NewChain returns a sampler that runs p's chain over logits of vocabSize
// tokens. Errors wrap ErrParams.
func NewChain(vocabSize int, p Params) (*Sampler, error) {
	if err := p.Validate(vocabSize); err != nil {
		return nil, err
	}
	seed := p.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()) | 1
	}
	c := &chain{p: p, temperature: clampTemperature(p.Temperature), counts: map[int32]int32{}}
	if p.TopP >= 1 {
		c.p.TopP = 0
	}
	if p.RepeatPenalty == 1 {
		c.p.RepeatPenalty = 0
	}
	switch p.RepeatLastN {
	case 0:
		c.lastN = DefaultRepeatLastN
	case -1:
		c.lastN = math.MaxInt
	default:
		c.lastN = p.RepeatLastN
	}
	for id, b := range p.LogitBias {
		c.bias = append(c.bias, biasEntry{int32(id), b})
	}
	slices.SortFunc(c.bias, func(a, b biasEntry) int { return int(a.id - b.id) })
	return &Sampler{rng: seed, chain: c}, nil
}

type biasEntry struct {
	id   int32
	bias float32
}

// cand is a candidate token: its id and its logit after the bias and the
// penalties.
type cand struct {
	logit float32
	id    int32
}

// chain is the state of a chain sampler: its parameters, the history the
// penalties read, and scratch space reused from step to step.
type chain struct {
	p           Params
	temperature float32
	lastN       int
	bias        []biasEntry
	recent      []int32         // the last tokens (prompt and sampled), at most lastN
	counts      map[int32]int32 // sampled tokens' occurrences
	vals        []float32       // the logits after the bias and penalties, then the weights
	exps        []float32       // top-p's weights
	cands       []cand          // the candidates the cuts keep
	edge        []cand          // top-p's boundary bucket
	live        []cand          // top-p's tokens that may be in the nucleus
	weights     []float32       // drawMany's weights by token id
	penalised   []int32
	max         float32 // the largest logit after the bias and penalties (filter)
}

func (c *chain) start(prompt []int) {
	c.recent = c.recent[:0]
	clear(c.counts)
	tail := prompt[max(0, len(prompt)-min(c.lastN, len(prompt))):]
	for _, id := range tail {
		c.recent = append(c.recent, int32(id))
	}
}

// record adds a sampled token to the history.
func (c *chain) record(id int) {
	c.counts[int32(id)]++
	if c.lastN == 0 {
		return
	}
	if len(c.recent) >= c.lastN {
		copy(c.recent, c.recent[1:])
		c.recent = c.recent[:len(c.recent)-1]
	}
	c.recent = append(c.recent, int32(id))
}

func (c *chain) sample(s *Sampler, logits []float32) int {
	v, kept, ok := c.filter(logits)
	var id int
	switch {
	case !ok:
		id = Argmax(logits) // every logit -Inf (or NaN): nothing to choose from
	case c.temperature == 0:
		id = int(kept[0].id)
	case kept == nil:
		id = c.drawDense(v, float64(s.randomF32()))
	default:
		id = c.drawSparse(kept, float64(s.randomF32()))
	}
	c.record(id)
	return id
}

// filter applies the chain up to the draw. It returns the logits after
// the bias and the penalties (forbidden tokens and NaNs at -Inf), held in
// c.vals, and the candidates kept by the cuts, in no order (aliasing
// c.cands), or nil when there is no cut: every token of v whose logit is
// above -Inf. At temperature 0 kept is the greedy token. ok is false when
// every token is forbidden.
func (c *chain) filter(logits []float32) (v []float32, kept []cand, ok bool) {
	n := len(logits)
	if cap(c.vals) < n {
		c.vals = make([]float32, n)
	}
	v = c.vals[:n]
	copy(v, logits)
	for _, b := range c.bias {
		if int(b.id) < n {
			v[b.id] += b.bias
		}
	}
	c.penalise(v)
	if n == 0 {
		return v, nil, false
	}
	m := kernels.Maxf(v)
	best := slices.Index(v, m)
	if best < 0 { // NaNs: the SIMD maximum is unspecified, look again
		for i, x := range v {
			if x > negInf && (best < 0 || x > v[best]) {
				best = i
			}
		}
	}
	if best < 0 || !(v[best] > negInf) {
		return v, nil, false
	}
	c.max = v[best]
	if c.temperature == 0 {
		return v, append(c.cands[:0], cand{v[best], int32(best)}), true
	}
	topK := c.p.TopK > 0 && c.p.TopK < n
	switch {
	case topK:
		kept = c.topK(v, c.p.TopK)
		if c.p.TopP > 0 {
			kept = c.topPSparse(kept)
		}
	case c.p.TopP > 0:
		kept = c.topP(v)
	case c.p.MinP > 0:
		kept = c.cands[:0]
		for i, x := range v {
			if x > negInf {
				kept = append(kept, cand{x, int32(i)})
			}
		}
	default:
		return v, nil, true
	}
	if mp := c.p.MinP; mp > 0 {
		// p_i >= minP * p_max  <=>  logit_i >= max + ln(minP).
		thr := float64(c.max) + math.Log(float64(mp))
		out := kept[:0]
		for _, x := range kept {
			if float64(x.logit) >= thr {
				out = append(out, x)
			}
		}
		kept = out
	}
	c.cands = kept
	return v, kept, true
}

var negInf = float32(math.Inf(-1))

// penalise applies the repetition penalty to the recent tokens and the
// presence and frequency penalties to the sampled ones, in v (indexed by
// token id).
func (c *chain) penalise(v []float32) {
	if rp := c.p.RepeatPenalty; rp > 0 && len(c.recent) > 0 {
		c.penalised = append(c.penalised[:0], c.recent...)
		slices.Sort(c.penalised)
		for i, id := range c.penalised {
			if (i > 0 && id == c.penalised[i-1]) || int(id) >= len(v) || id < 0 {
				continue
			}
			if l := &v[id]; *l <= 0 {
				*l *= rp
			} else {
				*l /= rp
			}
		}
	}
	if c.p.PresencePenalty != 0 || c.p.FrequencyPenalty != 0 {
		for id, n := range c.counts {
			if int(id) < len(v) && id >= 0 {
				v[id] -= float32(n)*c.p.FrequencyPenalty + c.p.PresencePenalty
			}
		}
	}
}

// before orders candidates for the cuts: larger logit first, then lower id.
func before(a, b cand) bool {
	return a.logit > b.logit || (a.logit == b.logit && a.id < b.id)
}

func compareCands(a, b cand) int {
	switch {
	case before(a, b):
		return -1
	case before(b, a):
		return 1
	}
	return 0
}

// drawDense picks a token of v with probability softmax(v/temperature),
// walking v in token-id order with coin in [0, 1). v is overwritten with
// the weights.
func (c *chain) drawDense(v []float32, coin float64) int {
	invT := 1 / c.temperature
	m := c.max
	for i, x := range v {
		v[i] = (x - m) * invT // -Inf stays -Inf: weight 0
	}
	sum := kernels.ExpSubSum(v, 0)
	return walk(v, coin*float64(sum))
}

// drawSparse picks one of the candidates with probability
// softmax(logit/temperature), walking them in token-id order with coin in
// [0, 1). Many candidates (a top-p nucleus of most of a flat vocabulary)
// go to drawMany, which draws as drawDense does without sorting.
func (c *chain) drawSparse(kept []cand, coin float64) int {
	if n := len(c.vals); len(kept) > n/manyCands {
		return c.drawMany(kept, coin, n)
	}
	slices.SortFunc(kept, func(a, b cand) int { return int(a.id - b.id) })
	invT := 1 / float64(c.temperature)
	var sum float64
	for _, x := range kept {
		sum += math.Exp((float64(x.logit) - float64(c.max)) * invT)
	}
	r := coin * sum
	var cdf float64
	for _, x := range kept {
		cdf += math.Exp((float64(x.logit) - float64(c.max)) * invT)
		if r < cdf {
			return int(x.id)
		}
	}
	return int(kept[len(kept)-1].id)
}

// manyCands: drawSparse takes drawMany's way when more than 1/manyCands of
// the vocabulary is kept. A random TinyLlama-shaped model (logits within
// +-4, the server's default top_p 0.9 at temperature 0.8, 32000 tokens)
// keeps about 90% of them: sorting them by id and taking each weight's
// exp twice cost 1.9 ms a token, 9% of a decode step at 2 threads on the
// Zen 4 VM (family 25 model 17); a float64 exp for each in id order 0.44
// ms; drawMany, the SIMD exps of drawDense, 0.1 ms.
const manyCands = 16

// drawMany is drawSparse's draw for kept candidates of a vocabulary of n
// tokens: each scaled logit goes to its token's place in a
// vocabulary-sized array, the tokens not kept at -Inf (weight 0), and the
// draw is drawDense's over it. Its weights are float32 exps, not
// drawSparse's float64 ones: the two pick different tokens only for coins
// within a rounding of a boundary between two tokens.
func (c *chain) drawMany(kept []cand, coin float64, n int) int {
	if cap(c.weights) < n {
		c.weights = make([]float32, n)
	}
	w := c.weights[:n]
	for i := range w {
		w[i] = negInf
	}
	invT, m := 1/c.temperature, c.max
	for _, x := range kept {
		w[x.id] = (x.logit - m) * invT // drawDense's weight before its exp
	}
	sum := kernels.ExpSubSum(w, 0)
	return walk(w, coin*float64(sum))
}

// walk returns the first index at which the running sum of w passes r
// (the last positive weight if rounding keeps it short). Blocks of 64
// weights are summed with four accumulators before the one that passes r
// is walked weight by weight: a single running sum is a chain of
// dependent additions, 4 times slower over a vocabulary.
func walk(w []float32, r float64) int {
	const block = 64
	var cdf float64
	i := 0
	for ; i+block <= len(w); i += block {
		var s0, s1, s2, s3 float32
		b := w[i : i+block : i+block]
		for j := 0; j < block; j += 4 {
			s0 += b[j]
			s1 += b[j+1]
			s2 += b[j+2]
			s3 += b[j+3]
		}
		if s := float64((s0 + s1) + (s2 + s3)); cdf+s > r {
			break
		} else {
			cdf += s
		}
	}
	last := -1
	for ; i < len(w); i++ {
		if w[i] == 0 {
			continue
		}
		last = i
		cdf += float64(w[i])
		if r < cdf {
			return i
		}
	}
	if last < 0 { // rounding ran past every block: the last positive weight
		for last = len(w) - 1; last > 0 && w[last] == 0; last-- {
		}
	}
	return last
}
