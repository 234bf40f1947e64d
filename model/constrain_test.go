package model

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// person is the Go side of personSchema, for the property test.
type person struct {
	Name string   `json:"name"`
	Age  int      `json:"age"`
	Tags []string `json:"tags"`
	OK   *bool    `json:"ok"`
}

const personSchema = `{"type":"object","properties":{
	"name":{"type":"string","minLength":1,"maxLength":12},
	"age":{"type":"integer","minimum":0,"maximum":120},
	"tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":3},
	"ok":{"type":"boolean"}},
	"required":["name","age","tags","ok"],"additionalProperties":false}`

// checkPerson decodes strictly and checks every constraint of personSchema.
func checkPerson(t *testing.T, text []byte) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var p person
	require.NoError(t, dec.Decode(&p), "%q", text)
	require.False(t, dec.More(), "%q", text)
	n := len([]rune(p.Name))
	require.True(t, n >= 1 && n <= 12, "%q", text)
	require.True(t, p.Age >= 0 && p.Age <= 120, "%q", text)
	require.LessOrEqual(t, len(p.Tags), 3, "%q", text)
	for _, tag := range p.Tags {
		require.Contains(t, []string{"red", "green", "blue"}, tag, "%q", text)
	}
	require.NotNil(t, p.OK, "%q", text)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(text, &raw))
	require.Len(t, raw, 4, "every property is required: %q", text)
}

type constrainedModel struct {
	model, tokenizer string
}

func openWithTokenizer(t *testing.T, cm constrainedModel) (*Model, *tokenizer.Tokenizer) {
	m := openModel(t, testfixture.Path(t, cm.model))
	tok := m.Tokenizer()
	if cm.tokenizer != "" {
		var err error
		tok, err = tokenizer.Load(testfixture.Path(t, cm.tokenizer), m.Config.VocabSize)
		require.NoError(t, err)
	}
	return m, tok
}

// TestConstrainedOutputsValidate: with random-weight models (and a tiny
// trained one) sampling at high temperatures, every output that ends
// parses and validates, over many seeds.
func TestConstrainedOutputsValidate(t *testing.T) {
	person, err := grammar.FromJSONSchema([]byte(personSchema))
	require.NoError(t, err)
	object, err := grammar.Parse(grammar.JSONGrammar)
	require.NoError(t, err)
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for _, cm := range []constrainedModel{
		{"stories260K.bin", "tok512.bin"},
		{"rand-gqa-32k.bin", "tokenizer.bin"},
		{"gguf/randk-Q4_0.gguf", ""},
	} {
		m, tok := openWithTokenizer(t, cm)
		s := newSession(t, m, 2)
		prompt := tok.Encode("Describe a person as JSON:", tok.AddBOS(), false)
		ended := 0
		for seed := 1; seed <= seeds; seed++ {
			for gi, g := range []*grammar.Grammar{person, object} {
				sampler, err := sample.NewChain(m.Config.VocabSize, sample.Params{Temperature: 1.2, TopK: 200, Seed: uint64(seed)})
				require.NoError(t, err)
				var text []byte
				var last Token
				for tk, err := range s.Tokens(context.Background(), prompt, GenerateOptions{
					MaxTokens: 300, Sampler: sampler, Tokenizer: tok, Grammar: g}) {
					require.NoError(t, err)
					if !tk.Prompt {
						text = append(text, tk.Text...)
						last = tk
					}
				}
				if last.Stop != StopEnd {
					continue // cut by MaxTokens: a prefix
				}
				ended++
				require.True(t, json.Valid(text), "%s seed %d: %q", cm.model, seed, text)
				if gi == 0 {
					checkPerson(t, text)
				} else {
					require.Equal(t, byte('{'), bytes.TrimSpace(text)[0], "%q", text)
				}
			}
		}
		require.Greater(t, ended, seeds/2, "%s: too few outputs ended", cm.model)
	}
}

// TestGrammarNeedsTokenizer and top-logprobs bounds are Start's errors.
func TestGenerateOptionsErrors(t *testing.T) {
	m, tok := openWithTokenizer(t, constrainedModel{"stories260K.bin", "tok512.bin"})
	s := newSession(t, m, 1)
	g, err := grammar.Parse(`root ::= "a"`)
	require.NoError(t, err)
	_, err = s.Start([]int{1}, GenerateOptions{Grammar: g})
	require.ErrorContains(t, err, "grammar needs a tokenizer")
	_, err = s.Start([]int{1}, GenerateOptions{TopLogprobs: 21})
	require.ErrorContains(t, err, "top logprobs 21")
	_, err = s.Start([]int{1}, GenerateOptions{TopLogprobs: -1})
	require.ErrorContains(t, err, "top logprobs -1")
	other, err := tokenizer.Load(testfixture.Path(t, "tokenizer.bin"), 0)
	require.NoError(t, err)
	_, err = s.Start([]int{1}, GenerateOptions{Tokenizer: other})
	require.ErrorContains(t, err, "the tokenizer has 32000 tokens, the model 512")
	_ = tok
}

// TestLogprobs: each token's log probability is the log-softmax of the
// logits at its position, computed here from the session's own logits in
// float64, and the top list is ordered and holds the sampled token when it
// is the most likely.
func TestLogprobs(t *testing.T) {
	m, tok := openWithTokenizer(t, constrainedModel{"stories260K.bin", "tok512.bin"})
	s := newSession(t, m, 1)
	ref := newSession(t, m, 1)
	prompt := tok.Encode("Once upon a time", true, false)
	sampler, err := sample.NewChain(m.Config.VocabSize, sample.Params{Temperature: 1, Seed: 5, PresencePenalty: 1})
	require.NoError(t, err)
	var toks []Token
	for tk, err := range s.Tokens(context.Background(), prompt, GenerateOptions{
		MaxTokens: 12, Sampler: sampler, Tokenizer: tok, Logprobs: true, TopLogprobs: 5}) {
		require.NoError(t, err)
		if !tk.Prompt {
			toks = append(toks, tk)
		}
	}
	seq := append([]int(nil), prompt...)
	for i, tk := range toks {
		logits, err := ref.PrefillLogits(seq, 0)
		require.NoError(t, err)
		var z float64
		for _, l := range logits {
			z += math.Exp(float64(l))
		}
		want := float64(logits[tk.ID]) - math.Log(z)
		require.InDelta(t, want, float64(tk.Logprob), 1e-4, "token %d", i)
		require.Len(t, tk.TopLogprobs, 5)
		for j := 1; j < 5; j++ {
			require.GreaterOrEqual(t, tk.TopLogprobs[j-1].Logprob, tk.TopLogprobs[j].Logprob)
		}
		best := tk.TopLogprobs[0]
		require.InDelta(t, float64(logits[best.ID])-math.Log(z), float64(best.Logprob), 1e-4)
		require.GreaterOrEqual(t, best.Logprob, tk.Logprob)
		seq = append(seq, tk.ID)
	}
}
