package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// chainFlags are the options beyond run.c's: llama.cpp's sampler chain and
// a grammar that constrains the output. Without any of them the CLI keeps
// run.c's sampler, and llama2.c's goldens hold.
type chainFlags struct {
	topK          int
	minP          float64
	repeatPenalty float64
	grammarFile   string
	jsonSchema    string
}

func (c *chainFlags) register(fs interface {
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
	StringVar(*string, string, string, string)
}) {
	fs.IntVar(&c.topK, "top-k", 0, "")
	fs.Float64Var(&c.minP, "min-p", 0, "")
	fs.Float64Var(&c.repeatPenalty, "repeat-penalty", 1, "")
	fs.StringVar(&c.grammarFile, "grammar-file", "", "")
	fs.StringVar(&c.jsonSchema, "json-schema", "", "")
}

// chain reports whether the options ask for more than run.c's sampler.
func (c *chainFlags) chain() bool {
	return c.topK != 0 || c.minP != 0 || c.repeatPenalty != 1 || c.constrained()
}

func (c *chainFlags) constrained() bool { return c.grammarFile != "" || c.jsonSchema != "" }

func (c *chainFlags) check() error {
	switch {
	case c.topK < 0:
		return fmt.Errorf("-top-k %d must not be negative (0 is off)", c.topK)
	case !(c.minP >= 0 && c.minP <= 1):
		return fmt.Errorf("-min-p %g must be in [0, 1]", c.minP)
	case !(c.repeatPenalty > 0 && c.repeatPenalty <= 10):
		return fmt.Errorf("-repeat-penalty %g must be in (0, 10] (1 is off)", c.repeatPenalty)
	case c.grammarFile != "" && c.jsonSchema != "":
		return errors.New("-grammar-file and -json-schema cannot be combined")
	}
	return nil
}

// sampler is the chain the options describe, with run.c's temperature,
// top-p and seed.
func (c *chainFlags) sampler(vocab int, o options) (*sample.Sampler, error) {
	return sample.NewChain(vocab, sample.Params{
		Temperature:   min(o.temperature, sample.MaxTemperature),
		TopP:          o.topp,
		TopK:          c.topK,
		MinP:          float32(c.minP),
		RepeatPenalty: float32(c.repeatPenalty),
		Seed:          o.seed,
	})
}

// grammar compiles -grammar-file or -json-schema (a file, or the schema
// itself when it starts with "{"); nil without them.
func (c *chainFlags) grammar() (*grammar.Grammar, error) {
	switch {
	case c.grammarFile != "":
		src, err := os.ReadFile(c.grammarFile)
		if err != nil {
			return nil, fmt.Errorf("-grammar-file: %w", err)
		}
		g, err := grammar.Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("-grammar-file %s: %w", c.grammarFile, err)
		}
		return g, nil
	case c.jsonSchema != "":
		schema := []byte(c.jsonSchema)
		name := "(inline)"
		if !strings.HasPrefix(strings.TrimSpace(c.jsonSchema), "{") {
			var err error
			if schema, err = os.ReadFile(c.jsonSchema); err != nil {
				return nil, fmt.Errorf("-json-schema: %w", err)
			}
			name = c.jsonSchema
		}
		g, err := grammar.FromJSONSchema(schema)
		if err != nil {
			return nil, fmt.Errorf("-json-schema %s: %w", name, err)
		}
		return g, nil
	}
	return nil, nil
}

// generateChain prints the prompt and the text sampled by the chain under
// the grammar (if any), as generate does for run.c's loop.
func generateChain(ctx context.Context, s *model.Session, tok *tokenizer.Tokenizer, sampler *sample.Sampler, g *grammar.Grammar, o options, stdout, stderr io.Writer) error {
	var text string
	if o.prompt != nil {
		text = *o.prompt
	}
	prompt := tok.Encode(text, tok.AddBOS(), false)
	seqLen := s.Model().Config.SeqLen
	if len(prompt) > seqLen {
		return fmt.Errorf("the prompt is %d tokens long, more than the model's context of %d", len(prompt), seqLen)
	}
	if len(prompt) == 0 {
		prompt = []int{tok.BOS()}
	}
	steps := o.steps
	if steps == 0 || steps > seqLen {
		steps = seqLen
	}
	// run.c's steps count positions: the prompt's, then one per token.
	maxTokens := max(steps-len(prompt)+1, 1)
	out := bufio.NewWriter(stdout)
	dec := tok.NewTextDecoder()
	var buf []byte
	for i, id := range prompt {
		if i > 0 {
			buf = dec.Append(buf, prompt[i-1], id)
		}
	}
	out.Write(buf)
	var err error
	for t, terr := range s.Tokens(ctx, prompt, model.GenerateOptions{MaxTokens: maxTokens, Sampler: sampler, Tokenizer: tok, Grammar: g}) {
		if terr != nil {
			err = terr
			break
		}
		if !t.Prompt {
			out.Write(t.Text)
			if werr := out.Flush(); werr != nil {
				return fmt.Errorf("writing the output: %w", werr)
			}
		}
	}
	out.WriteString("\n")
	if ferr := out.Flush(); ferr != nil {
		return fmt.Errorf("writing the output: %w", ferr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// checkTemperature refuses a temperature that is not a number (run.c's
// clamping makes any other value usable: below 0 is 0).
func checkTemperature(t float64) error {
	if math.IsNaN(t) {
		return errors.New("-t NaN is not a number")
	}
	return nil
}
