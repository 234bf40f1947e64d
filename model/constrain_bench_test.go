package model

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// syntheticTokenizer is a SentencePiece vocabulary of n pieces: the 256
// byte tokens, then random pieces of text and JSON characters (the shape
// of a BPE vocabulary such as Llama 3's 128256).
func syntheticTokenizer(tb testing.TB, n int) *tokenizer.Tokenizer {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	v := tokenizer.Vocab{BOS: 1, EOS: 2, UNK: 0, PAD: -1, Tokens: []string{"<unk>", "<s>", "</s>"}}
	for b := range 256 {
		v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
	}
	seen := map[string]bool{}
	alphabet := []string{"a", "e", "i", "o", "t", "n", "s", "r", "▁", "\"", ":", ",", "{", "}", "[", "]", "0", "1", "5", ".", "-", "\\", "é", "ing", "▁the", "_", "x", "\n"}
	for len(v.Tokens) < n {
		p := ""
		for range 1 + r.IntN(7) {
			p += alphabet[r.IntN(len(alphabet))]
		}
		if !seen[p] {
			seen[p] = true
			v.Tokens = append(v.Tokens, p)
		}
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

const benchSchema = `{"type":"object","properties":{"name":{"type":"string","maxLength":40},
	"age":{"type":"integer","minimum":0,"maximum":120},"email":{"type":"string"},
	"tags":{"type":"array","items":{"type":"string"},"maxItems":8},
	"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string","maxLength":10}},"required":["street","city","zip"]},
	"active":{"type":"boolean"}},"required":["name","age","email","tags","address","active"],"additionalProperties":false}`

// BenchmarkConstrained compares generating under a JSON schema's grammar
// with generating freely, on stories110M's shape (vocabulary 32000,
// llama2.c's tokenizer) and a shape with Llama 3's vocabulary of 128256
// (a synthetic vocabulary of byte-level pieces). ns/token is the time per
// sampled token. "warm" reuses one compiled grammar across runs (as the
// server's cache does); "cold" compiles it for every run, so its first
// tokens pay for the vocabulary walks. Run with -count to alternate the
// variants.
func BenchmarkConstrained(b *testing.B) {
	shapes := []struct {
		name string
		cfg  Config
		tok  func(b *testing.B) *tokenizer.Tokenizer
	}{
		{"stories110M", storiesShapes[2].cfg, func(b *testing.B) *tokenizer.Tokenizer {
			tok, err := tokenizer.Load(testfixture.Path(b, "tokenizer.bin"), 32000)
			if err != nil {
				b.Fatal(err)
			}
			return tok
		}},
		{"vocab128k", Config{Dim: 1024, HiddenDim: 2816, Layers: 8, Heads: 16, KVHeads: 4, VocabSize: 128256, SeqLen: 512, SharedClassifier: true},
			func(b *testing.B) *tokenizer.Tokenizer { return syntheticTokenizer(b, 128256) }},
	}
	if os.Getenv("LLAMA2_BENCH_SHAPE") != "" {
		keep := shapes[:0]
		for _, s := range shapes {
			if s.name == os.Getenv("LLAMA2_BENCH_SHAPE") {
				keep = append(keep, s)
			}
		}
		shapes = keep
	}
	const steps = 64
	for _, shape := range shapes {
		m := openModel(b, benchCheckpoint(b, shape.name, shape.cfg)) // closed when the parent ends
		tok := shape.tok(b)
		warm, err := grammar.FromJSONSchema([]byte(benchSchema))
		if err != nil {
			b.Fatal(err)
		}
		for _, variant := range []string{"free", "grammar-warm", "grammar-cold"} {
			b.Run(shape.name+"/"+variant, func(b *testing.B) {
				s, err := m.NewSession(SessionOptions{Threads: 2})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				prompt := tok.Encode("Describe a person:", true, false)
				if variant == "grammar-warm" { // the masks of a first run, untimed
					sampler, _ := sample.NewChain(m.Config.VocabSize, sample.Params{Temperature: 1, Seed: 99})
					for _, err := range s.Tokens(context.Background(), prompt, GenerateOptions{MaxTokens: steps, Tokenizer: tok, Grammar: warm, Sampler: sampler}) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				tokens := 0
				seed := uint64(1)
				for b.Loop() {
					opts := GenerateOptions{MaxTokens: steps, Tokenizer: tok}
					switch variant {
					case "grammar-warm":
						opts.Grammar = warm
					case "grammar-cold":
						if opts.Grammar, err = grammar.FromJSONSchema([]byte(benchSchema)); err != nil {
							b.Fatal(err)
						}
					}
					if opts.Sampler, err = sample.NewChain(m.Config.VocabSize, sample.Params{Temperature: 1, TopP: 0.95, Seed: seed}); err != nil {
						b.Fatal(err)
					}
					seed++
					for t, err := range s.Tokens(context.Background(), prompt, opts) {
						if err != nil {
							b.Fatal(err)
						}
						if !t.Prompt {
							tokens++
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(tokens), "ns/token")
			})
		}
	}
}
