package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// joinIDs formats ids as the tokenize command prints them.
func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ") + "\n"
}

func TestTokenizeGoldenLlamaCpp(t *testing.T) {
	vocab := fixture(t, "gguf/ggml-vocab-llama-spm.gguf")
	f, err := os.Open(fixture(t, "golden/gguf/encode-llama-spm.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		var c struct {
			Text         string `json:"text"`
			AddSpecial   bool   `json:"add_special"`
			ParseSpecial bool   `json:"parse_special"`
			IDs          []int  `json:"ids"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
		args := []string{"tokenize", vocab, "-bos=" + strconv.FormatBool(c.AddSpecial), "-i", c.Text}
		if c.ParseSpecial {
			args = append(args, "-special")
		}
		code, stdout, stderr := runCLI(t, "", args...)
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, joinIDs(c.IDs), stdout, "text %q add_special %v parse_special %v", c.Text, c.AddSpecial, c.ParseSpecial)
		lines++
	}
	require.NoError(t, sc.Err())
	require.NotZero(t, lines)
}

func TestTokenizeLlama2cCheckpoint(t *testing.T) {
	ckpt, tok := fixture(t, "stories260K.bin"), fixture(t, "tok512.bin")
	code, stdout, stderr := runCLI(t, "", "tokenize", ckpt, "-z", tok, "-i", "Once upon a time")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "1 403 407 261 378\n", stdout)

	// The GGUF twin gives the same ids; text from standard input.
	twin := fixture(t, "gguf/stories260K-f32.gguf")
	code, stdout, stderr = runCLI(t, "Once upon a time", "tokenize", twin)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "1 403 407 261 378\n", stdout)
}

func TestTokenizePieces(t *testing.T) {
	vocab := fixture(t, "gguf/ggml-vocab-llama-spm.gguf")
	code, stdout, stderr := runCLI(t, "", "tokenize", vocab, "-pieces", "-special", "-eos", "-i", "Hello\n</s>")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, `1:"<s>" 15043:"▁Hello" 13:"<0x0A>" 2:"</s>" 2:"</s>"`+"\n", stdout)

	// Without -special, "</s>" is text.
	code, stdout, _ = runCLI(t, "", "tokenize", vocab, "-bos=false", "-i", "</s>")
	require.Equal(t, 0, code)
	assert.Equal(t, "1533 29879 29958\n", stdout)
}

func TestTokenizeErrors(t *testing.T) {
	code, stdout, _ := runCLI(t, "", "tokenize", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "Usage: llama2 tokenize")

	code, _, stderr := runCLI(t, "", "tokenize", "x.gguf", "-nope")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "error: flag provided but not defined: -nope")
	assert.Contains(t, stderr, "Usage: llama2 tokenize")

	code, _, stderr = runCLI(t, "", "tokenize")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "error: no checkpoint given")

	code, _, stderr = runCLI(t, "", "tokenize", "/no/such.gguf", "-i", "x")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: checkpoint /no/such.gguf: no such file or directory\n", stderr)

	twin := fixture(t, "gguf/stories260K-f32.gguf")
	code, _, stderr = runCLI(t, "", "tokenize", twin, "-z", "tokenizer.bin", "-i", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "is a GGUF file, which holds its own vocabulary")
	assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line")

	// A llama2.c checkpoint with a tokenizer of the wrong size.
	ckpt := fixture(t, "stories260K.bin")
	code, _, stderr = runCLI(t, "", "tokenize", ckpt, "-z", fixture(t, "tokenizer.bin"), "-i", "x")
	assert.Equal(t, 0, code, "tokenizer.bin has more pieces than the model needs: the first 512 are read, as run.c does: %s", stderr)
	code, _, stderr = runCLI(t, "", "tokenize", ckpt, "-z", fixture(t, "gguf/ggml-vocab-llama-spm.gguf"), "-i", "x")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "the vocabulary has 32000 tokens, the model 512")
}
