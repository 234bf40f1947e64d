package model

import (
	"context"
	"fmt"
	"iter"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

// StopReason says why a sequence stopped.
type StopReason uint8

// The reasons a sequence stops.
const (
	NotStopped      StopReason = iota // still running
	StopLength                        // GenerateOptions.MaxTokens tokens were sampled
	StopEnd                           // the model sampled its end (EOS, or BOS: a new sequence)
	StopString                        // a stop string was generated
	StopCancelled                     // the context was cancelled, or Sequence.Cancel called
	StopContextFull                   // the last position of the context was fed
)

// String names r for logs and errors.
func (r StopReason) String() string {
	switch r {
	case NotStopped:
		return "running"
	case StopLength:
		return "length"
	case StopEnd:
		return "end"
	case StopString:
		return "stop string"
	case StopCancelled:
		return "cancelled"
	case StopContextFull:
		return "context full"
	}
	return fmt.Sprintf("StopReason(%d)", r)
}

// FinishReason is OpenAI's finish_reason for r: "length" when a limit
// (max_tokens, the context) ended the text, "stop" when the model or a stop
// string did, "" otherwise.
func (r StopReason) FinishReason() string {
	switch r {
	case StopLength, StopContextFull:
		return "length"
	case StopEnd, StopString:
		return "stop"
	}
	return ""
}

// Token is one token of a sequence: the prompt's, then the sampled ones.
type Token struct {
	ID  int
	Pos int // the token's position in the sequence
	// Prompt marks the prompt's tokens; the others were sampled.
	Prompt bool
	// Cached marks prompt tokens whose keys and values were already in the
	// session's cache, from an earlier sequence with the same prefix.
	Cached bool
	// Text is the text this sampled token releases when the options name a
	// tokenizer: whole UTF-8 characters, none of a stop string, and text
	// held back until it could no longer begin one. It is not reused.
	Text []byte
	// Stop is set on the sequence's last token: why it stopped. A token
	// with StopEnd is the model's end token (EOS or BOS), not part of the
	// text; its Text is what was held back.
	Stop StopReason
	// Logprob is the token's log probability and TopLogprobs the most
	// likely tokens' at its position, most likely first, when
	// GenerateOptions.Logprobs asks for them: the log-softmax of the
	// model's logits, before the logit bias, the penalties, a grammar's
	// mask and the temperature (the model's own distribution, whatever
	// the sampling settings).
	Logprob     float32
	TopLogprobs []sample.Logprob
}

// GenerateOptions configures a sequence ([Session.Start], [Session.Tokens]).
type GenerateOptions struct {
	// MaxTokens is the most tokens to sample; 0 means until the context is
	// full.
	MaxTokens int
	// Sampler picks each token; nil means greedy (argmax).
	Sampler *sample.Sampler
	// Tokenizer, when set, decodes the sampled tokens into Token.Text, and
	// its EOS ends the sequence (besides the model's own end tokens).
	Tokenizer *tokenizer.Tokenizer
	// Stop lists strings that end the sequence when generated (they are
	// not part of the text). They need a Tokenizer.
	Stop []string
	// Grammar, when set, constrains the text: only tokens that keep it a
	// prefix of the grammar's language are sampled, and the end token
	// only once it is complete. It needs a Tokenizer. Build one with
	// grammar.Parse (GBNF) or grammar.FromJSONSchema.
	Grammar *grammar.Grammar
	// Logprobs asks for each sampled token's log probability
	// (Token.Logprob), and TopLogprobs (at most MaxTopLogprobs) for the
	// most likely tokens at each position (Token.TopLogprobs).
	Logprobs    bool
	TopLogprobs int
}

// MaxTopLogprobs is the most GenerateOptions.TopLogprobs may ask for, as
// OpenAI allows.
const MaxTopLogprobs = 20

// Usage counts a sequence's tokens.
type Usage struct {
	PromptTokens int // the prompt's tokens
	CachedTokens int // prompt tokens reused from the session's cache
	// CompletionTokens are the tokens sampled, not counting the model's
	// end token.
	CompletionTokens int
}

// Tokens generates from prompt on the session: it yields the prompt's
// tokens once they are fed (Token.Prompt), then each sampled token, the
// last one carrying the reason the sequence stopped (Token.Stop). An error
// is yielded once, with a Token whose ID is -1, and ends the stream: a
// cancelled ctx yields ctx's error with StopCancelled. Breaking out of the
// loop stops the sequence. The session's cache keeps the sequence for the
// next one (see [Sequence]). ctx must not be nil.
func (s *Session) Tokens(ctx context.Context, prompt []int, opts GenerateOptions) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
		if ctx == nil {
			yield(Token{ID: -1}, errNilContext)
			return
		}
		q, err := s.Start(prompt, opts)
		if err != nil {
			yield(Token{ID: -1}, err)
			return
		}
		defer q.Cancel()
		cancelled := func() bool {
			if err := ctx.Err(); err != nil {
				q.Cancel()
				yield(Token{ID: -1, Stop: StopCancelled}, err)
				return true
			}
			return false
		}
		chunk := DefaultBatch
		if s.batch != nil {
			chunk = s.batch.size
		}
		// The last chunk takes the prompt's last token too, and samples
		// the first token from its logits (prefillLast).
		for q.Pending()+1 > chunk {
			if cancelled() {
				return
			}
			if _, err := q.Prefill(chunk); err != nil {
				yield(Token{ID: -1}, err)
				return
			}
		}
		if cancelled() {
			return
		}
		if err := q.prefillLast(); err != nil {
			yield(Token{ID: -1}, err)
			return
		}
		for i, id := range q.prompt {
			if !yield(Token{ID: id, Pos: i, Prompt: true, Cached: i < q.cached}, nil) {
				return
			}
		}
		if !yield(q.Token(), nil) {
			return
		}
		if s.step == nil {
			s.step = newBatch(s.m, s.pool, 1, false)
		}
		one := []*Sequence{q}
		for !q.Done() {
			if cancelled() {
				return
			}
			if err := s.step.Step(one); err != nil {
				yield(Token{ID: -1}, err)
				return
			}
			if !yield(q.Token(), nil) {
				return
			}
		}
	}
}
