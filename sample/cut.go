package sample

import (
	"math"
	"slices"

	"github.com/llama2-go/llama2/internal/kernels"
)

// The cuts of the chain that need an order: top-k and top-p. Both run in
// time linear in the vocabulary (a heap of k, a histogram) instead of
// sorting a vocabulary of 152k tokens at every step, which takes 10-20 ms.

// topK returns the k first candidates of v in the order of before (0 < k <
// len(v)), or all of them if fewer are above -Inf: a min-heap of the k
// best seen so far, in one pass over v; most tokens fail the first
// comparison with the heap's worst.
func (c *chain) topK(v []float32, k int) []cand {
	h := c.cands[:0]
	for i, x := range v {
		if !(x > negInf) {
			continue
		}
		if len(h) < k {
			h = append(h, cand{x, int32(i)})
			heapUp(h, len(h)-1)
			continue
		}
		// Ids grow: a logit equal to the worst's comes after it.
		if x > h[0].logit {
			h[0] = cand{x, int32(i)}
			heapDown(h, 0)
		}
	}
	c.cands = h
	return h
}

// The heap's root is the candidate that comes last in the order of before.
func heapUp(h []cand, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !before(h[p], h[i]) {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func heapDown(h []cand, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		worst := l
		if r := l + 1; r < len(h) && before(h[l], h[r]) {
			worst = r
		}
		if !before(h[i], h[worst]) {
			return
		}
		h[i], h[worst] = h[worst], h[i]
		i = worst
	}
}

// topPBuckets is the histogram's resolution: the boundary bucket, the only
// one sorted, holds 1/256 of the logits' range.
const topPBuckets = 256

// topPSparse keeps the fewest of the candidates, most likely first, whose
// probabilities (the softmax of their logits) add up to at least TopP.
func (c *chain) topPSparse(cs []cand) []cand {
	slices.SortFunc(cs, compareCands)
	var total float64
	for _, x := range cs {
		total += math.Exp(float64(x.logit) - float64(c.max))
	}
	target := float64(c.p.TopP) * total
	var cum float64
	for i, x := range cs {
		cum += math.Exp(float64(x.logit) - float64(c.max))
		if cum >= target {
			return cs[:i+1]
		}
	}
	return cs
}

// topP keeps the fewest tokens of v, most likely first, whose
// probabilities (the softmax of v) add up to at least TopP: the tokens are
// put in buckets by logit, the buckets above the one where the mass
// reaches TopP are kept whole, and that one is sorted.
func (c *chain) topP(v []float32) []cand {
	n, m := len(v), c.max
	if cap(c.exps) < n {
		c.exps = make([]float32, n)
	}
	w := c.exps[:n]
	copy(w, v) // -Inf weighs 0
	total := kernels.ExpSubSum(w, m)
	// A token less likely than (1-TopP)/n cannot be in the nucleus (all
	// the tokens after it together are below 1-TopP): only the others go
	// into buckets, which with a trained model's peaked logits are few.
	floor := float32((1 - float64(c.p.TopP)) / float64(n) * float64(total))
	// Their logits are within -ln(floor) of m: the buckets span that.
	span := -float32(math.Log(float64(floor)))
	scale := float32(0)
	if span > 0 && !math.IsInf(float64(span), 0) {
		scale = (topPBuckets - 1) / span
	}
	bucket := func(l float32) int { return min(int((m-l)*scale), topPBuckets-1) }
	// One pass over the vocabulary collects them; the rest works on them.
	live := c.live[:0]
	for i, x := range w {
		if x > floor {
			live = append(live, cand{x, int32(i)}) // the weight, for now
		}
	}
	c.live = live
	var mass [topPBuckets]float64
	for _, x := range live {
		mass[bucket(v[x.id])] += float64(x.logit)
	}
	target := float64(c.p.TopP) * float64(total)
	var above float64 // mass of the buckets before b
	b := 0
	for ; b < topPBuckets-1 && above+mass[b] < target; b++ {
		above += mass[b]
	}
	kept, edge := c.cands[:0], c.edge[:0]
	for _, x := range live {
		switch k := bucket(v[x.id]); {
		case k < b:
			kept = append(kept, cand{v[x.id], x.id})
		case k == b:
			edge = append(edge, cand{v[x.id], x.id})
		}
	}
	c.edge = edge
	slices.SortFunc(edge, compareCands)
	cum := above
	for _, x := range edge {
		kept = append(kept, x)
		cum += float64(w[x.id])
		if cum >= target {
			break
		}
	}
	if len(kept) == 0 { // the weights underflowed: keep the most likely token
		kept = append(kept, cand{m, int32(slices.Index(v, m))})
	}
	c.cands = kept
	return kept
}
