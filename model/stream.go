package model

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"slices"
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
}

// GenerateOptions configures a sequence ([Session.Start], [Session.Tokens]).
type GenerateOptions struct {
	// MaxTokens is the most tokens to sample; 0 means until the context is
	// full.
	MaxTokens int
	// Sampler picks each token; nil means greedy (argmax).
	Sampler *Sampler
	// Tokenizer, when set, decodes the sampled tokens into Token.Text, and
	// its EOS ends the sequence (besides the model's own end tokens).
	Tokenizer *Tokenizer
	// Stop lists strings that end the sequence when generated (they are
	// not part of the text). They need a Tokenizer.
	Stop []string
}

// Usage counts a sequence's tokens.
type Usage struct {
	PromptTokens int // the prompt's tokens
	CachedTokens int // prompt tokens reused from the session's cache
	// CompletionTokens are the tokens sampled, not counting the model's
	// end token.
	CompletionTokens int
}

// Sequence is one generation on a session: its prompt is prefilled
// ([Sequence.Prefill]), then a [Batch] step at a time samples a token
// (alone or beside other sequences), until it stops. The session keeps
// the sequence's tokens in its cache afterwards, and the next sequence
// started on it reuses the longest common prefix: continuing a chat (the
// conversation so far, then the new turn) feeds only the new tokens.
type Sequence struct {
	s       *Session
	prompt  []int
	opts    GenerateOptions
	sampler *Sampler
	cached  int // prompt tokens reused from the cache
	fed     int // prompt tokens whose keys and values are in the cache
	pos     int // position of the next token to feed
	next    int // the token to feed at pos
	sampled int // tokens sampled, the end token included
	last    Token
	stop    StopReason
	dec     *TextDecoder
	filter  stopFilter
	buf     []byte
}

// Start begins a sequence on s for prompt. The longest common prefix of
// the prompt and the tokens in the session's cache (see [Session.Cached])
// is reused, leaving at least the prompt's last token to feed. Errors:
// [ErrEmptyPrompt], [ErrPromptTooLong], [ErrClosed], [ErrBusy] (a sequence
// still running on s), a token outside the vocabulary.
func (s *Session) Start(prompt []int, opts GenerateOptions) (*Sequence, error) {
	c := &s.cfg
	switch {
	case s.closed.Load():
		return nil, errSessionClosed
	case s.running:
		return nil, ErrBusy
	case len(prompt) == 0:
		return nil, ErrEmptyPrompt
	case len(prompt) > c.SeqLen:
		return nil, errPromptTooLong(len(prompt), c.SeqLen)
	case opts.MaxTokens < 0:
		return nil, fmt.Errorf("max tokens %d must not be negative", opts.MaxTokens)
	case len(opts.Stop) > 0 && opts.Tokenizer == nil:
		return nil, fmt.Errorf("stop strings need a tokenizer")
	}
	for _, t := range prompt {
		if t < 0 || t >= c.VocabSize {
			return nil, errToken(t, c.VocabSize)
		}
	}
	reuse := 0
	for reuse < min(len(prompt)-1, len(s.cached)) && prompt[reuse] == s.cached[reuse] {
		reuse++
	}
	s.cached = s.cached[:reuse]
	q := &Sequence{s: s, prompt: slices.Clone(prompt), opts: opts, sampler: opts.Sampler,
		cached: reuse, fed: reuse}
	if q.sampler == nil {
		q.sampler = NewSampler(c.VocabSize, 0, 0, 1)
	}
	if opts.Tokenizer != nil {
		q.dec = opts.Tokenizer.NewTextDecoder()
		q.filter.set(opts.Stop)
	}
	q.afterPrefill()
	s.running = true
	return q, nil
}

// Cached returns the tokens whose keys and values are in the session's
// cache, at positions 0, 1, ...: a sequence's prompt and the tokens it fed
// (its last sampled token is not fed). The next [Session.Start] reuses
// their longest common prefix with its prompt.
func (s *Session) Cached() []int { return slices.Clone(s.cached) }

// Pending is the number of prompt tokens still to prefill.
func (q *Sequence) Pending() int { return len(q.prompt) - 1 - q.fed }

// Ready reports whether a [Batch] step can advance the sequence: its prompt
// is prefilled and it has not stopped.
func (q *Sequence) Ready() bool { return q.Pending() == 0 && q.stop == NotStopped }

// Done reports whether the sequence has stopped; [Sequence.Reason] says why.
func (q *Sequence) Done() bool { return q.stop != NotStopped }

// Reason is why the sequence stopped, or NotStopped.
func (q *Sequence) Reason() StopReason { return q.stop }

// Token is the token the last step sampled.
func (q *Sequence) Token() Token { return q.last }

// Session is the session the sequence runs on.
func (q *Sequence) Session() *Session { return q.s }

// Usage counts the sequence's tokens so far.
func (q *Sequence) Usage() Usage {
	u := Usage{PromptTokens: len(q.prompt), CachedTokens: q.cached, CompletionTokens: q.sampled}
	if q.stop == StopEnd {
		u.CompletionTokens--
	}
	return u
}

// Prefill feeds up to max of the pending prompt tokens (all of them when
// max <= 0) through the session, batched as its SessionOptions.Batch says,
// and returns how many are still pending. Interleaving chunks with other
// sequences' steps keeps a long prompt from stalling them.
func (q *Sequence) Prefill(max int) (pending int, err error) {
	if q.stop != NotStopped {
		return 0, fmt.Errorf("prefill: the sequence has stopped (%v)", q.stop)
	}
	n := q.Pending()
	if max > 0 {
		n = min(n, max)
	}
	if n > 0 {
		chunk := q.prompt[q.fed : q.fed+n]
		if err := q.s.Prefill(chunk, q.fed); err != nil {
			return q.Pending(), err
		}
		q.s.cached = append(q.s.cached, chunk...)
		q.fed += n
	}
	q.afterPrefill()
	return q.Pending(), nil
}

// prefillLast feeds the pending prompt tokens and the last one together
// (Session.PrefillLogits) and samples the first token from the logits after
// them, as the Step that feeds the last token would: a sequence running
// alone streams the weights once for its prompt instead of once more for
// that token.
func (q *Sequence) prefillLast() error {
	rest := q.prompt[q.fed:]
	logits, err := q.s.PrefillLogits(rest, q.fed)
	if err != nil {
		return err
	}
	q.s.cached = append(q.s.cached, rest[:len(rest)-1]...)
	q.fed = len(q.prompt) - 1
	q.afterPrefill()
	q.accept(logits)
	return nil
}

func (q *Sequence) afterPrefill() {
	if q.Pending() == 0 {
		q.pos, q.next = len(q.prompt)-1, q.prompt[len(q.prompt)-1]
	}
}

// Cancel stops the sequence (StopCancelled) unless it has stopped already,
// and frees its session for the next one.
func (q *Sequence) Cancel() {
	if q.stop == NotStopped {
		q.end(StopCancelled)
	}
}

func (q *Sequence) end(r StopReason) {
	q.stop = r
	q.s.running = false
}

// accept takes the logits of the step that fed q.next at q.pos: it samples
// the next token and decides whether the sequence stops.
func (q *Sequence) accept(logits []float32) {
	s := q.s
	s.cached = append(s.cached[:q.pos], q.next)
	id := q.sampler.Sample(logits)
	q.sampled++
	t := Token{ID: id, Pos: q.pos + 1}
	tok := q.opts.Tokenizer
	switch {
	case s.m.stops(id) || (tok != nil && id == tok.EOS()):
		t.Stop = StopEnd
		t.Text = q.filter.flush()
	case tok != nil:
		q.buf = q.dec.Append(q.buf[:0], q.next, id)
		var matched bool
		if t.Text, matched = q.filter.push(q.buf); matched {
			t.Stop = StopString
		}
	}
	if t.Stop == NotStopped {
		switch {
		case q.sampled == q.opts.MaxTokens:
			t.Stop = StopLength
		case q.pos+1 >= s.cfg.SeqLen:
			t.Stop = StopContextFull
		}
		if t.Stop != NotStopped {
			t.Text = append(t.Text, q.filter.flush()...)
		}
	}
	q.pos, q.next, q.last = q.pos+1, id, t
	if t.Stop != NotStopped {
		q.end(t.Stop)
	}
}

// Tokens generates from prompt on the session: it yields the prompt's
// tokens once they are fed (Token.Prompt), then each sampled token, the
// last one carrying the reason the sequence stopped (Token.Stop). An error
// is yielded once, with a Token whose ID is -1, and ends the stream: a
// cancelled ctx yields ctx's error with StopCancelled. Breaking out of the
// loop stops the sequence. The session's cache keeps the sequence for the
// next one (see [Sequence]).
func (s *Session) Tokens(ctx context.Context, prompt []int, opts GenerateOptions) iter.Seq2[Token, error] {
	return func(yield func(Token, error) bool) {
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

// stopFilter holds back text that may be the start of a stop string and
// cuts the text at the first stop string.
type stopFilter struct {
	stops [][]byte
	held  []byte
}

func (f *stopFilter) set(stops []string) {
	for _, s := range stops {
		if s != "" {
			f.stops = append(f.stops, []byte(s))
		}
	}
}

// push adds text and returns what can be released; matched reports a stop
// string, in which case the text before it is released and the rest dropped.
func (f *stopFilter) push(text []byte) (out []byte, matched bool) {
	f.held = append(f.held, text...)
	at := -1
	for _, s := range f.stops {
		if i := bytes.Index(f.held, s); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at >= 0 {
		out = bytes.Clone(f.held[:at])
		f.held = f.held[:0]
		return out, true
	}
	// Keep the longest suffix that is a proper prefix of a stop string. It
	// starts where a stop string starts, so at a character boundary.
	keep := 0
	for _, s := range f.stops {
		for k := min(len(s)-1, len(f.held)); k > keep; k-- {
			if bytes.HasSuffix(f.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	if len(f.held) == keep {
		return nil, false
	}
	out = bytes.Clone(f.held[:len(f.held)-keep])
	f.held = append(f.held[:0], f.held[len(f.held)-keep:]...)
	return out, false
}

// flush releases the held text at the end of a generation without a match.
func (f *stopFilter) flush() []byte {
	out := f.held
	f.held = nil
	return out
}
