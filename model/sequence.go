package model

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/llama2-go/llama2/grammar"
	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
)

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
	sampler *sample.Sampler
	cached  int // prompt tokens reused from the cache
	fed     int // prompt tokens whose keys and values are in the cache
	pos     int // position of the next token to feed
	next    int // the token to feed at pos
	sampled int // tokens sampled, the end token included
	last    Token
	stop    StopReason
	dec     *tokenizer.TextDecoder
	filter  stopFilter
	buf     []byte
	matcher *grammar.Matcher // nil without a grammar
	ends    []int            // the end tokens a grammar lets through once complete
	endLogs []float32
	scratch []float32 // logprobs' working copy of the logits
}

// Start begins a sequence on s for prompt. The longest common prefix of
// the prompt and the tokens in the session's cache (see [Session.Cached])
// is reused, leaving at least the prompt's last token to feed. Errors:
// [ErrEmptyPrompt], [ErrPromptTooLong], [ErrClosed], [ErrBusy] (a sequence
// still running on s, or another call), a token outside the vocabulary.
func (s *Session) Start(prompt []int, opts GenerateOptions) (*Sequence, error) {
	if err := s.enter(false); err != nil {
		return nil, err
	}
	defer s.exit()
	c := &s.cfg
	switch {
	case len(prompt) == 0:
		return nil, ErrEmptyPrompt
	case len(prompt) > c.SeqLen:
		return nil, errPromptTooLong(len(prompt), c.SeqLen)
	case opts.MaxTokens < 0:
		return nil, fmt.Errorf("max tokens %d must not be negative", opts.MaxTokens)
	case len(opts.Stop) > 0 && opts.Tokenizer == nil:
		return nil, fmt.Errorf("stop strings need a tokenizer")
	case opts.Grammar != nil && opts.Tokenizer == nil:
		return nil, fmt.Errorf("a grammar needs a tokenizer")
	case opts.TopLogprobs < 0 || opts.TopLogprobs > MaxTopLogprobs:
		return nil, fmt.Errorf("top logprobs %d is outside [0, %d]", opts.TopLogprobs, MaxTopLogprobs)
	case opts.Tokenizer != nil && opts.Tokenizer.VocabSize() != c.VocabSize:
		return nil, fmt.Errorf("the tokenizer has %d tokens, the model %d", opts.Tokenizer.VocabSize(), c.VocabSize)
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
	q.sampler.Start(prompt) // nil: greedy
	if opts.Tokenizer != nil {
		q.dec = opts.Tokenizer.NewTextDecoder()
		q.filter.set(opts.Stop)
	}
	if opts.Grammar != nil {
		q.matcher = opts.Grammar.NewMatcher(grammarTokens(opts.Tokenizer))
		for _, id := range []int{opts.Tokenizer.EOS(), opts.Tokenizer.BOS(), tokenizer.BOS, tokenizer.EOS} {
			if id >= 0 && id < c.VocabSize && (s.m.stops(id) || id == opts.Tokenizer.EOS()) && !slices.Contains(q.ends, id) {
				q.ends = append(q.ends, id)
			}
		}
		q.endLogs = make([]float32, len(q.ends))
	}
	q.afterPrefill()
	s.running.Store(true)
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
	if q.s == nil {
		return 0, errNotStarted
	}
	if q.stop != NotStopped {
		return 0, fmt.Errorf("prefill: the sequence has stopped (%v)", q.stop)
	}
	if err := q.s.enter(true); err != nil {
		return q.Pending(), err
	}
	defer q.s.exit()
	n := q.Pending()
	if max > 0 {
		n = min(n, max)
	}
	if n > 0 {
		chunk := q.prompt[q.fed : q.fed+n]
		if err := q.s.prefill(chunk, q.fed); err != nil {
			return q.Pending(), err
		}
		q.s.cached = append(q.s.cached, chunk...)
		q.fed += n
		q.s.filled = q.fed
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
	if err := q.s.enter(true); err != nil {
		return err
	}
	defer q.s.exit()
	rest := q.prompt[q.fed:]
	logits, err := q.s.prefillLogits(rest, q.fed)
	if err != nil {
		return err
	}
	q.s.filled = len(q.prompt)
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
	if q.stop == NotStopped && q.s != nil {
		q.end(StopCancelled)
	}
}

func (q *Sequence) end(r StopReason) {
	q.stop = r
	q.s.running.Store(false)
}

// grammarTokens is the token trie of a tokenizer, built once: tokenizers
// are immutable.
func grammarTokens(tok *tokenizer.Tokenizer) *grammar.Tokens {
	if t, ok := tokenTries.Load(tok); ok {
		return t.(*grammar.Tokens)
	}
	t, _ := tokenTries.LoadOrStore(tok, grammar.NewTokens(tok))
	return t.(*grammar.Tokens)
}

var tokenTries sync.Map // *tokenizer.Tokenizer -> *grammar.Tokens

// constrain masks the logits a grammar forbids; the end tokens pass once
// the grammar is complete.
func (q *Sequence) constrain(logits []float32) {
	for i, id := range q.ends {
		q.endLogs[i] = logits[id]
	}
	q.matcher.Mask(logits)
	if q.matcher.CanEnd() {
		for i, id := range q.ends {
			logits[id] = q.endLogs[i]
		}
	}
}

var errNotStarted = errors.New("the sequence was not started (Session.Start makes one)")

// accept takes the logits of the step that fed q.next at q.pos: it samples
// the next token and decides whether the sequence stops.
func (q *Sequence) accept(logits []float32) {
	s := q.s
	s.cached = append(s.cached[:q.pos], q.next)
	var lse, raw float32
	var top []sample.Logprob
	if q.opts.Logprobs {
		if cap(q.scratch) < 2*len(logits) {
			q.scratch = make([]float32, 2*len(logits))
		}
		lse = sample.LogSumExp(logits, q.scratch)
		top = sample.TopLogprobs(nil, logits, lse, q.opts.TopLogprobs)
		copy(q.scratch[len(logits):], logits) // the samplers may overwrite logits
	}
	if q.matcher != nil {
		q.constrain(logits)
	}
	id := q.sampler.Sample(logits)
	if q.opts.Logprobs {
		raw = q.scratch[len(logits)+id]
	}
	q.sampled++
	t := Token{ID: id, Pos: q.pos + 1, Logprob: raw - lse, TopLogprobs: top}
	tok := q.opts.Tokenizer
	if q.matcher != nil && !slices.Contains(q.ends, id) && q.matcher.Accept(id) != nil {
		// Nothing was allowed (the grammar cannot continue and the model
		// has no end token to let through): end here.
		t.Stop = StopEnd
		t.Text = q.filter.flush()
		q.pos, q.next, q.last = q.pos+1, id, t
		q.end(t.Stop)
		return
	}
	switch {
	case s.m.stops(id) || (tok != nil && tok.IsEOG(id)):
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

var errStepArgs = errors.New("batch step")

// Step advances each sequence by one token in one forward pass of the
// batch ([Batch.Forward]): it feeds the sequence's next token at its
// position and samples the token after it with the sequence's sampler.
// Each sequence's [Sequence.Token] is then the token sampled, and
// [Sequence.Done] tells whether it ended. The sequences must be ready
// ([Sequence.Ready]: the prompt prefilled, not ended), on distinct
// sessions of the batch's model, at most [Batch.Size] of them. A step
// while another call runs on the batch, or on one of the sessions, fails
// with [ErrBusy].
func (b *Batch) Step(seqs []*Sequence) error {
	if err := b.enter(); err != nil {
		return fmt.Errorf("%w: %w", errStepArgs, err)
	}
	defer b.busy.Store(false)
	if len(seqs) > b.size {
		return fmt.Errorf("%w: %d sequences, more than the batch's %d", errStepArgs, len(seqs), b.size)
	}
	entries := b.stepEntries[:0]
	for i, q := range seqs {
		switch {
		case q == nil:
			return fmt.Errorf("%w: sequence %d is nil", errStepArgs, i)
		case q.s == nil:
			return fmt.Errorf("%w: sequence %d: %w", errStepArgs, i, errNotStarted)
		case !q.Ready():
			return fmt.Errorf("%w: sequence %d is not ready (prompt tokens pending: %d, ended: %v)", errStepArgs, i, q.Pending(), q.Done())
		}
		for j, p := range seqs[:i] {
			if q.sampler != nil && p.sampler == q.sampler { // they draw at once
				return fmt.Errorf("%w: sequences %d and %d share a sampler (one a generation)", errStepArgs, j, i)
			}
		}
		entries = append(entries, BatchEntry{Session: q.s, Token: q.next, Pos: q.pos})
	}
	b.stepEntries = entries
	defer clear(b.stepEntries)
	if err := b.check(entries); err != nil {
		return fmt.Errorf("%w: %w", errStepArgs, err)
	}
	if err := b.hold(entries, true); err != nil {
		return fmt.Errorf("%w: %w", errStepArgs, err)
	}
	defer b.letGo(entries)
	b.stepLogits, b.stepSeqs = b.run(entries), seqs
	defer func() { b.stepLogits, b.stepSeqs = nil, nil }()
	// Each sequence samples on its own state, so the workers share them:
	// one after another the draws were 10% of a step of 8 at 2 threads
	// (TinyLlama Q4_K_M's flat random logits, 0.7 ms a draw; Zen 4,
	// family 25 model 17).
	b.pool.run(len(seqs), 1, b.acceptBody)
	return nil
}

// acceptRange samples the next token of the step's sequences [lo, hi).
func (b *Batch) acceptRange(lo, hi int) {
	vocab := b.cfg.VocabSize
	for i := lo; i < hi; i++ {
		b.stepSeqs[i].accept(b.stepLogits[i*vocab : (i+1)*vocab])
	}
}
