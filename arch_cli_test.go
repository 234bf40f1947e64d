package main

import (
	"errors"
	"strconv"
	"testing"

	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/model"
	"github.com/stretchr/testify/require"
)

// TestCLIArchFiles runs the command line on the Llama 3 and Qwen2 files
// (random weights, the real vocabularies inside). With their byte-level
// BPE vocabulary readable, greedy generation after the first teacher
// tokens prints llama.cpp's greedy tokens; without it (a build without
// the BPE tokenizer), the command says why it cannot run and exits 1.
func TestCLIArchFiles(t *testing.T) {
	for _, c := range []struct {
		file, tokens, prompt string
	}{
		{"l3rand-f32", "llama3", "The quick brown fox"},      // BOS + 4 tokens
		{"q2rand-f32", "qwen2", "The quick brown fox jumps"}, // no BOS: 5 tokens
	} {
		t.Run(c.file, func(t *testing.T) {
			path := fixture(t, "gguf/"+c.file+".gguf")
			m, err := model.Open(path)
			require.NoError(t, err)
			tok, tokErr := m.Tokenizer(), m.TokenizerError()
			m.Close()
			greedy := testfixture.Ints(t, fixture(t, "golden/gguf/"+c.file+".greedy.txt"))
			teacher := testfixture.Ints(t, fixture(t, "golden/gguf/teacher-tokens-"+c.tokens+".txt"))[:5]
			// -n counts positions, run.c's steps: each prints the token after
			// it, so the last of the golden's tokens comes out of position
			// len(teacher)+len(greedy)-2.
			args := []string{path, "-t", "0", "-n", strconv.Itoa(len(teacher) + len(greedy) - 1), "-i", c.prompt}
			code, stdout, stderr := runCLI(t, "", args...)
			if tok == nil {
				require.ErrorIs(t, tokErr, errors.ErrUnsupported)
				require.Equal(t, 1, code)
				require.Contains(t, stderr, c.file+".gguf")
				require.Contains(t, stderr, `tokenizer.ggml.model "gpt2"`)
				t.Logf("generation not checked: %v", tokErr)
				return
			}
			require.Equal(t, 0, code, stderr)
			require.Equal(t, teacher, tok.Encode(c.prompt, tok.AddBOS(), false))
			ids := append(teacher, greedy...)
			dec := tok.NewTextDecoder()
			var want []byte
			for i := 1; i < len(ids); i++ {
				want = dec.Append(want, ids[i-1], ids[i])
			}
			want = append(dec.Flush(want), '\n')
			require.Equal(t, string(want), stdout)
		})
	}
}
