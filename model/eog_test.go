package model

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStopsAtEveryEOGToken: generation ends at every end-of-generation
// token of the vocabulary, not only the file's EOS. l3rand's embeddings
// are tied and strong, so greedy decoding repeats the prompt's last token:
// a prompt ending with <|end_of_text|> samples it again, which must end
// the stream; the file's EOS is <|eot_id|>. (Its vocabulary has Llama 3.0's
// names: no <|eom_id|>; package tokenizer tests that one.)
func TestStopsAtEveryEOGToken(t *testing.T) {
	m, err := Open(fixture(t, "gguf/l3rand-f32.gguf"))
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	tok := m.Tokenizer()
	require.Equal(t, 128009, m.EOS())
	for _, id := range []int{128001, 128009} { // <|end_of_text|>, <|eot_id|>
		require.True(t, m.stops(id), "token %d", id)
	}
	require.False(t, m.stops(9906), "an ordinary token")

	s := newSession(t, m, 1)
	var last Token
	n := 0
	for tk, err := range s.Tokens(context.Background(), []int{128000, 9906, 128001}, GenerateOptions{MaxTokens: 20, Tokenizer: tok}) {
		require.NoError(t, err)
		last = tk
		n++
	}
	require.Equal(t, StopEnd, last.Stop)
	require.Equal(t, 128001, last.ID)
	require.Equal(t, 4, n, "three prompt tokens and the end token")
}
