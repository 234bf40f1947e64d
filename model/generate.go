package model

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/llama2-go/llama2/sample"
)

// Stats reports what a generation did and how long it took.
type Stats struct {
	PromptTokens    int // prompt tokens, BOS included
	GeneratedTokens int // tokens sampled
	Positions       int // positions fed through the model

	// PromptDuration is the time until the first token was sampled (the
	// whole prompt fed); GenerateDuration the time spent after it.
	PromptDuration, GenerateDuration time.Duration

	// TimedPositions positions ran in Timed. Without prompt batching this is
	// run.c's measure: every position after the first, timed from the end of
	// the first. A batched prompt counts as that first step: the positions it
	// fed at once are not in TimedPositions.
	TimedPositions int
	Timed          time.Duration
}

// TokensPerSecond is run.c's "achieved tok/s": TimedPositions per second of
// Timed. It is 0 when nothing was timed.
func (s Stats) TokensPerSecond() float64 {
	if s.TimedPositions < 1 || s.Timed <= 0 {
		return 0
	}
	return float64(s.TimedPositions) / s.Timed.Seconds()
}

// Generate runs run.c's generation loop on a fresh sequence: it feeds the
// prompt tokens from position 0 (no sampling while in the prompt, batched
// by [Session.Prefill]), then samples, until steps positions have run, BOS
// (or a GGUF model's EOS, [Model.EOS]) is sampled, emit returns false, or
// ctx is cancelled. The prompt may hold BOS tokens after the first (a
// multi-turn chat rendered as Llama 2 does). steps <= 0 or beyond the
// context means the whole context, as in run.c. For llama2.c checkpoints EOS
// does not stop generation (run.c does not either); embedders that want it
// to can return false from emit.
//
// For every position it calls emit(prev, next): the token just fed and the
// token that follows it, from the prompt or sampled. Decode the pair with
// [Tokenizer.Decode] or a [TextDecoder] to print the text. A nil emit runs
// the generation without calls; a nil sampler is greedy (argmax), as
// in [GenerateOptions]. ctx must not be nil.
func (s *Session) Generate(ctx context.Context, prompt []int, sampler *sample.Sampler, steps int, emit func(prev, next int) bool) (st Stats, err error) {
	if ctx == nil {
		return st, fmt.Errorf("generate: %w", errNilContext)
	}
	if err := s.enter(false); err != nil {
		return st, fmt.Errorf("generate: %w", err)
	}
	defer s.exit()
	if sampler == nil {
		sampler = sample.New(s.cfg.VocabSize, 0, 0, 1)
	}
	if emit == nil {
		emit = func(int, int) bool { return true }
	}
	st.PromptTokens = len(prompt)
	seqLen := s.cfg.SeqLen
	if len(prompt) == 0 {
		return st, fmt.Errorf("generate: %w (it should at least hold BOS)", ErrEmptyPrompt)
	}
	if len(prompt) > seqLen {
		return st, fmt.Errorf("generate: %w", errPromptTooLong(len(prompt), seqLen))
	}
	if steps <= 0 || steps > seqLen {
		steps = seqLen
	}
	t := generationTimer{begin: time.Now()}
	defer t.finish(&st)

	// The prompt tokens whose successor is known: fed without logits. When
	// the first token is sampled right after them, the last prompt token
	// goes in the same batch (PrefillLogits) and first holds its logits.
	known := min(len(prompt)-1, steps)
	var first []float32
	if known > 1 && s.batch != nil {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if known == len(prompt)-1 {
			first, err = s.prefillLogits(prompt, 0)
			t.prefilled = len(prompt)
		} else {
			err = s.prefill(prompt[:known], 0)
			t.prefilled = known
		}
		if err != nil {
			return st, err
		}
		s.filled = t.prefilled
	}
	token := prompt[0]
	for pos := 0; pos < steps; pos++ {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		var next int
		sampled := pos >= known
		if !sampled {
			if pos >= t.prefilled {
				if _, err = s.forward(token, pos); err != nil {
					return st, err
				}
				s.filled = pos + 1
			}
			next = prompt[pos+1]
		} else {
			logits := first
			if pos >= t.prefilled {
				if logits, err = s.forward(token, pos); err != nil {
					return st, err
				}
				s.filled = pos + 1
			}
			if st.GeneratedTokens == 0 {
				st.PromptDuration = time.Since(t.begin)
			}
			next = sampler.Sample(logits)
			st.GeneratedTokens++
		}
		st.Positions = pos + 1
		// A sampled BOS (or a GGUF model's EOS) ends the sequence; BOS
		// inside the prompt (a multi-turn chat) does not.
		if (sampled && s.m.stops(next)) || !emit(token, next) {
			break
		}
		token = next
		t.startOnce(max(t.prefilled, 1))
	}
	return st, nil
}

var errNilContext = errors.New("nil context (use context.Background())")

// generationTimer measures as run.c does: the clock starts once the first
// step (the first position, or the batched prompt) is done.
type generationTimer struct {
	begin     time.Time
	start     time.Time
	startPos  int // positions done when the clock started
	prefilled int // prompt positions fed in one batch
}

func (t *generationTimer) startOnce(positionsDone int) {
	if t.start.IsZero() {
		t.start, t.startPos = time.Now(), positionsDone
	}
}

func (t *generationTimer) finish(st *Stats) {
	end := time.Now()
	if st.GeneratedTokens == 0 {
		st.PromptDuration = end.Sub(t.begin)
	} else {
		st.GenerateDuration = end.Sub(t.begin) - st.PromptDuration
	}
	if !t.start.IsZero() {
		st.Timed = end.Sub(t.start)
		st.TimedPositions = st.Positions - t.startPos
	}
}
