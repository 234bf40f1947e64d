package sample

import (
	"math"

	"github.com/llama2-go/llama2/internal/kernels"
)

// Logprob is a token and its log probability.
type Logprob struct {
	ID      int
	Logprob float32
}

// LogSumExp returns log(sum(exp(logits))), the normaliser of the
// softmax: a token's log probability is its logit minus it. scratch, of at
// least len(logits) floats, is overwritten; logits are not.
func LogSumExp(logits, scratch []float32) float32 {
	if len(logits) == 0 {
		return float32(math.Inf(-1))
	}
	x := scratch[:len(logits)]
	copy(x, logits)
	m := kernels.Maxf(x)
	if math.IsInf(float64(m), 0) {
		return m
	}
	return m + float32(math.Log(float64(kernels.ExpSubSum(x, m))))
}

// TopLogprobs appends to dst the n most likely tokens of logits, most
// likely first (ties: lower id first), with their log probabilities given
// lse = LogSumExp(logits).
func TopLogprobs(dst []Logprob, logits []float32, lse float32, n int) []Logprob {
	n = min(n, len(logits))
	if n <= 0 {
		return dst
	}
	start := len(dst)
	for id, l := range logits {
		top := dst[start:]
		if len(top) == n && !(l > top[n-1].Logprob) {
			continue
		}
		// Insert in order; the list holds logits until the end.
		i := len(top)
		if i == n {
			i--
		} else {
			dst = append(dst, Logprob{})
			top = dst[start:]
		}
		for i > 0 && l > top[i-1].Logprob {
			top[i] = top[i-1]
			i--
		}
		top[i] = Logprob{ID: id, Logprob: l}
	}
	for i := range dst[start:] {
		dst[start+i].Logprob -= lse
	}
	return dst
}
