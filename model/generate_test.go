package model

import (
	"context"
	"testing"

	"github.com/llama2-go/llama2/sample"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// stories260K opens the trained fixture model and its tokenizer.
func stories260K(t *testing.T) (*Model, *tokenizer.Tokenizer) {
	m := openModel(t, fixture(t, "stories260K.bin"))
	tok, err := tokenizer.Load(fixture(t, "tok512.bin"), m.Config.VocabSize)
	require.NoError(t, err)
	return m, tok
}

func TestGenerateStopsAndCounts(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	prompt := tok.Encode("Once upon a time", true, false)
	var pairs [][2]int
	st, err := s.Generate(context.Background(), prompt, sample.New(512, 0, 0, 1), 10, func(prev, next int) bool {
		pairs = append(pairs, [2]int{prev, next})
		return true
	})
	require.NoError(t, err)
	require.Equal(t, len(prompt), st.PromptTokens)
	require.Equal(t, 10, st.Positions)
	require.Equal(t, 10-len(prompt)+1, st.GeneratedTokens)
	require.Len(t, pairs, 10)
	for i := 1; i < len(prompt); i++ {
		require.Equal(t, [2]int{prompt[i-1], prompt[i]}, pairs[i-1], "the prompt is echoed")
	}
	for i := 1; i < len(pairs); i++ {
		require.Equal(t, pairs[i-1][1], pairs[i][0], "each next token is fed")
	}

	// emit returning false stops at once.
	calls := 0
	st, err = s.Generate(context.Background(), prompt, sample.New(512, 0, 0, 1), 0, func(prev, next int) bool {
		calls++
		return calls < 3
	})
	require.NoError(t, err)
	require.Equal(t, 3, calls)
	require.Equal(t, 3, st.Positions)
}

func TestGenerateCancel(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	st, err := s.Generate(ctx, tok.Encode("", true, false), sample.New(512, 1, 0.9, 5), 0, func(prev, next int) bool {
		n++
		if n == 5 {
			cancel()
		}
		return true
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 5, n)
	require.Equal(t, 5, st.Positions)
}

func TestGenerateErrors(t *testing.T) {
	m, _ := stories260K(t)
	s := newSession(t, m, 1)
	emit := func(prev, next int) bool { return true }
	_, err := s.Generate(context.Background(), nil, sample.New(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "no tokens")
	require.ErrorIs(t, err, ErrEmptyPrompt)
	long := make([]int, m.Config.SeqLen+1)
	_, err = s.Generate(context.Background(), long, sample.New(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "more than the model's context of 512")
	require.ErrorIs(t, err, ErrPromptTooLong)
	_, err = s.Generate(context.Background(), []int{1, 9999}, sample.New(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "outside the vocabulary")
}

// TestGenerateSteadyStateDoesNotAllocate measures allocations per generated
// token: two runs that differ only in length must allocate the same.
func TestGenerateSteadyStateDoesNotAllocate(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 2)
	prompt := tok.Encode("Once", true, false)
	sampler := sample.New(512, 0.9, 0.9, 3)
	emit := func(prev, next int) bool { return true }
	allocs := func(steps int) float64 {
		return testing.AllocsPerRun(5, func() {
			if _, err := s.Generate(context.Background(), prompt, sampler, steps, emit); err != nil {
				t.Fatal(err)
			}
		})
	}
	require.Equal(t, allocs(20), allocs(200))
}

// TestGenerateContinuesPastPromptBOS: a multi-turn chat prompt holds a tokenizer.BOS
// before every turn; only a sampled tokenizer.BOS ends generation.
func TestGenerateContinuesPastPromptBOS(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	prompt := append(tok.Encode("Hello there", true, true), tok.Encode("Once upon", true, false)...)
	var fed []int
	st, err := s.Generate(context.Background(), prompt, sample.New(512, 0, 0, 1), len(prompt)+5, func(prev, next int) bool {
		fed = append(fed, next)
		return true
	})
	require.NoError(t, err)
	require.Equal(t, len(prompt)+5, st.Positions)
	require.Equal(t, 6, st.GeneratedTokens)
	require.Equal(t, prompt[1:], fed[:len(prompt)-1])
}
