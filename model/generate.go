package model

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Stats reports what a generation did and how long it took.
type Stats struct {
	PromptTokens    int // prompt tokens, BOS included
	GeneratedTokens int // tokens sampled
	Positions       int // positions fed through the model

	// PromptDuration is the time spent feeding the prompt; GenerateDuration
	// the time spent sampling new tokens.
	PromptDuration, GenerateDuration time.Duration

	// Timed is run.c's measure: the wall clock from the end of the first
	// position to the end, over Positions-1 positions.
	Timed time.Duration
}

// TokensPerSecond is run.c's "achieved tok/s": positions after the first
// divided by the time since the first one finished. It is 0 when fewer than
// two positions ran.
func (s Stats) TokensPerSecond() float64 {
	if s.Positions < 2 || s.Timed <= 0 {
		return 0
	}
	return float64(s.Positions-1) / s.Timed.Seconds()
}

// Generate runs run.c's generation loop on a fresh sequence: it feeds the
// prompt tokens from position 0 (no sampling while in the prompt), then
// samples, until steps positions have run, BOS is sampled, emit returns
// false, or ctx is cancelled. steps <= 0 or beyond the context means the
// whole context, as in run.c. EOS does not stop generation (run.c does not
// either); embedders that want it to can return false from emit.
//
// For every position it calls emit(prev, next): the token just fed and the
// token that follows it, from the prompt or sampled. Decode the pair with
// [Tokenizer.Decode] or a [TextDecoder] to print the text.
func (s *Session) Generate(ctx context.Context, prompt []int, sampler *Sampler, steps int, emit func(prev, next int) bool) (Stats, error) {
	st := Stats{PromptTokens: len(prompt)}
	seqLen := s.cfg.SeqLen
	if len(prompt) == 0 {
		return st, errors.New("generate: the prompt has no tokens (it should at least hold BOS)")
	}
	if len(prompt) > seqLen {
		return st, fmt.Errorf("generate: the prompt has %d tokens, more than the model's context of %d", len(prompt), seqLen)
	}
	if steps <= 0 || steps > seqLen {
		steps = seqLen
	}
	begin := time.Now()
	var timerStart time.Time
	token := prompt[0]
	for pos := 0; pos < steps; pos++ {
		if err := ctx.Err(); err != nil {
			st.finish(begin, timerStart)
			return st, err
		}
		logits, err := s.Forward(token, pos)
		if err != nil {
			return st, err
		}
		var next int
		if pos < len(prompt)-1 {
			next = prompt[pos+1]
		} else {
			if st.GeneratedTokens == 0 {
				st.PromptDuration = time.Since(begin)
			}
			next = sampler.Sample(logits)
			st.GeneratedTokens++
		}
		st.Positions = pos + 1
		if next == BOS {
			break
		}
		if !emit(token, next) {
			break
		}
		token = next
		if timerStart.IsZero() {
			timerStart = time.Now()
		}
	}
	st.finish(begin, timerStart)
	return st, nil
}

func (st *Stats) finish(begin, timerStart time.Time) {
	end := time.Now()
	if st.GeneratedTokens == 0 {
		st.PromptDuration = end.Sub(begin)
	} else {
		st.GenerateDuration = end.Sub(begin) - st.PromptDuration
	}
	if !timerStart.IsZero() {
		st.Timed = end.Sub(timerStart)
	}
}
