package model

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// stories260K opens the trained fixture model and its tokenizer.
func stories260K(t *testing.T) (*Model, *Tokenizer) {
	m := openModel(t, fixture(t, "stories260K.bin"))
	tok, err := LoadTokenizer(fixture(t, "tok512.bin"), m.Config.VocabSize)
	require.NoError(t, err)
	return m, tok
}

func TestGenerateStopsAndCounts(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	prompt := tok.Encode("Once upon a time", true, false)
	var pairs [][2]int
	st, err := s.Generate(context.Background(), prompt, NewSampler(512, 0, 0, 1), 10, func(prev, next int) bool {
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
	st, err = s.Generate(context.Background(), prompt, NewSampler(512, 0, 0, 1), 0, func(prev, next int) bool {
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
	st, err := s.Generate(ctx, tok.Encode("", true, false), NewSampler(512, 1, 0.9, 5), 0, func(prev, next int) bool {
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
	_, err := s.Generate(context.Background(), nil, NewSampler(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "no tokens")
	require.ErrorIs(t, err, ErrEmptyPrompt)
	long := make([]int, m.Config.SeqLen+1)
	_, err = s.Generate(context.Background(), long, NewSampler(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "more than the model's context of 512")
	require.ErrorIs(t, err, ErrPromptTooLong)
	_, err = s.Generate(context.Background(), []int{1, 9999}, NewSampler(512, 0, 0, 1), 0, emit)
	require.ErrorContains(t, err, "outside the vocabulary")
}

// TestGenerateSteadyStateDoesNotAllocate measures allocations per generated
// token: two runs that differ only in length must allocate the same.
func TestGenerateSteadyStateDoesNotAllocate(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 2)
	prompt := tok.Encode("Once", true, false)
	sampler := NewSampler(512, 0.9, 0.9, 3)
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

func TestChatEndsAtEndOfInput(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	var out strings.Builder
	// No system prompt given: it is asked for; the input ends after it.
	err := s.Chat(context.Background(), tok, NewSampler(512, 0, 0, 1), ChatOptions{}, strings.NewReader("be brief\n"), &out)
	require.NoError(t, err)
	require.Equal(t, "Enter system prompt (optional): User: \n", out.String())
}

func TestChatTakesLongLines(t *testing.T) {
	m, tok := stories260K(t)
	system := ""
	long := strings.Repeat("a b ", 150) + "cat"
	full := len(tok.Encode(Llama2ChatPrompt("", long), true, false))
	require.Greater(t, full, len(tok.Encode(Llama2ChatPrompt("", long[:511]), true, false)))
	chat := func(steps int) string {
		var out strings.Builder
		err := newSession(t, m, 1).Chat(context.Background(), tok, NewSampler(512, 0, 0, 1),
			ChatOptions{System: &system, Steps: steps}, strings.NewReader(long+"\n"), &out)
		require.NoError(t, err)
		return out.String()
	}
	// The whole line is the prompt: the assistant's first piece comes out
	// of the last prompt position, not before.
	require.Equal(t, "User: Assistant: \n", chat(full-1))
	require.Greater(t, len(chat(full)), len("User: Assistant: \n"))
}

func TestLlama2ChatPrompt(t *testing.T) {
	require.Equal(t, "[INST] <<SYS>>\nsys\n<</SYS>>\n\nhi [/INST]", Llama2ChatPrompt("sys", "hi"))
	require.Equal(t, "[INST] hi [/INST]", Llama2ChatPrompt("", "hi"))
}

// TestGenerateContinuesPastPromptBOS: a multi-turn chat prompt holds a BOS
// before every turn; only a sampled BOS ends generation.
func TestGenerateContinuesPastPromptBOS(t *testing.T) {
	m, tok := stories260K(t)
	s := newSession(t, m, 1)
	prompt := append(tok.Encode("Hello there", true, true), tok.Encode("Once upon", true, false)...)
	var fed []int
	st, err := s.Generate(context.Background(), prompt, NewSampler(512, 0, 0, 1), len(prompt)+5, func(prev, next int) bool {
		fed = append(fed, next)
		return true
	})
	require.NoError(t, err)
	require.Equal(t, len(prompt)+5, st.Positions)
	require.Equal(t, 6, st.GeneratedTokens)
	require.Equal(t, prompt[1:], fed[:len(prompt)-1])
}
