package grammar

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkMask times what a constrained step adds to sampling: the mask
// of the state (Allowed), applying it to the logits (Mask) and moving past
// the sampled token (Accept), over random walks through a JSON schema's
// grammar with byte-level vocabularies of 32k and 128k tokens. "warm"
// walks with a grammar whose per-frame masks are computed (the server's
// cache); "cold" compiles the grammar anew for each walk, so the walks
// over the vocabulary's trie are in it. ns/token is per step.
func BenchmarkMask(b *testing.B) {
	schema := []byte(`{"type":"object","properties":{"name":{"type":"string","maxLength":40},
	"age":{"type":"integer","minimum":0,"maximum":120},"email":{"type":"string"},
	"tags":{"type":"array","items":{"type":"string"},"maxItems":8},
	"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"}},"required":["street","city"]},
	"active":{"type":"boolean"}},"required":["name","age","email","tags","address","active"],"additionalProperties":false}`)
	for _, n := range []int{32000, 128256} {
		toks := NewTokens(syntheticVocab(n, 3))
		warm, err := FromJSONSchema(schema)
		if err != nil {
			b.Fatal(err)
		}
		logits := make([]float32, n)
		for _, variant := range []string{"warm", "cold"} {
			b.Run(fmt.Sprintf("vocab=%d/%s", n, variant), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 1))
				steps := 0
				if variant == "warm" { // compute the frames' masks once
					for range 20 {
						walkMasked(warm.NewMatcher(toks), r, logits, 200)
					}
				}
				for b.Loop() {
					g := warm
					if variant == "cold" {
						g, _ = FromJSONSchema(schema)
					}
					steps += walkMasked(g.NewMatcher(toks), r, logits, 200)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/token")
			})
		}
	}
}

// walkMasked takes random allowed tokens, masking logits at each step.
func walkMasked(m *Matcher, r *rand.Rand, logits []float32, steps int) int {
	for i := range steps {
		m.Mask(logits)
		allowed := m.Allowed()
		n := countAllowed(allowed)
		if n == 0 {
			return i
		}
		m.Accept(nthAllowed(allowed, r.IntN(n)))
	}
	return steps
}
