package model_test

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strings"

	"github.com/llama2-go/llama2/model"
	"github.com/llama2-go/llama2/tokenizer"
)

// Session.Tokens streams a generation: the prompt's tokens, then each
// sampled token with its text; the last one says why the stream stopped.
func ExampleSession_Tokens() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.NewSession(model.SessionOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	prompt := tok.Encode("Once upon a time", true, false)
	opts := model.GenerateOptions{MaxTokens: 50, Tokenizer: tok, Stop: []string{"."}} // greedy: no Sampler
	var text strings.Builder
	for t, err := range s.Tokens(context.Background(), prompt, opts) {
		if err != nil {
			log.Fatal(err)
		}
		text.Write(t.Text)
		if t.Stop != model.NotStopped {
			fmt.Printf("%q stopped: %v (%s)\n", text.String(), t.Stop, t.Stop.FinishReason())
		}
	}
	// Output: ", there was a little girl named Lily" stopped: stop string (stop)
}

// A Batch advances several sequences, each on its own session, by one token
// per forward pass; each gets the tokens it would get alone. Both texts
// begin llama2.c's greedy stories for these prompts (run.c's output in
// ../shared/golden: stories260K-greedy.txt, stories260K-prompt-greedy.txt).
func ExampleBatch() {
	m, err := model.Open("../testdata/stories260K.bin")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load("../testdata/tok512.bin", m.Config.VocabSize)
	if err != nil {
		log.Fatal(err)
	}
	b, err := m.NewBatch(model.BatchOptions{Size: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	var seqs []*model.Sequence
	for _, p := range []string{"Once upon a time", "Once upon a time, a dragon"} {
		s, err := m.NewSession(model.SessionOptions{})
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		q, err := s.Start(tok.Encode(p, true, false), model.GenerateOptions{MaxTokens: 6, Tokenizer: tok})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := q.Prefill(0); err != nil { // the whole prompt at once
			log.Fatal(err)
		}
		seqs = append(seqs, q)
	}
	texts := make([]string, len(seqs))
	for {
		var ready []*model.Sequence
		for _, q := range seqs {
			if q.Ready() {
				ready = append(ready, q)
			}
		}
		if len(ready) == 0 {
			break
		}
		if err := b.Step(ready); err != nil { // one forward pass for all of them
			log.Fatal(err)
		}
		for i, q := range seqs {
			if slices.Contains(ready, q) {
				texts[i] += string(q.Token().Text)
			}
		}
	}
	for i, q := range seqs {
		fmt.Printf("%q %v %+v\n", texts[i], q.Reason(), q.Usage())
	}
	// Output:
	// ", there was a little g" length {PromptTokens:5 CachedTokens:0 CompletionTokens:6}
	// " went to the par" length {PromptTokens:12 CachedTokens:0 CompletionTokens:6}
}
