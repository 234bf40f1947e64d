package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/internal/testfixture"
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

// cachedTokenizers replaces the command's loader, for the duration of the
// test, by one that reads each vocabulary once: the golden files have 756
// rows and each run of the command would read the vocabulary again.
func cachedTokenizers(t *testing.T) {
	type key struct {
		path string
		size int
	}
	cache := map[key]*tokenizer.Tokenizer{}
	load := loadTokenizer
	loadTokenizer = func(path string, size int) (*tokenizer.Tokenizer, error) {
		if tok, ok := cache[key{path, size}]; ok {
			return tok, nil
		}
		tok, err := load(path, size)
		if err == nil {
			cache[key{path, size}] = tok
		}
		return tok, err
	}
	t.Cleanup(func() { loadTokenizer = load })
}

// TestTokenizeGoldenBPE runs every row of llama.cpp's byte-level BPE
// goldens through `llama2 tokenize`, both ways: the text to ids, and the
// ids back to text with -detokenize (whose rows print special tokens).
func TestTokenizeGoldenBPE(t *testing.T) {
	cachedTokenizers(t)
	vocabs := map[string]string{
		"llama3": "gguf/ggml-vocab-llama3.gguf",
		"qwen2":  "gguf/ggml-vocab-qwen2.gguf",
		"gpt2":   "gguf/ggml-vocab-gpt-2.gguf",
	}
	for name, file := range vocabs {
		vocab := fixture(t, file)
		for _, c := range testfixture.ReadJSONL[struct {
			Text         string `json:"text"`
			AddSpecial   bool   `json:"add_special"`
			ParseSpecial bool   `json:"parse_special"`
			IDs          []int  `json:"ids"`
		}](t, "golden/gguf/encode-"+name+".jsonl") {
			args := []string{"tokenize", vocab, "-i", c.Text}
			if !c.AddSpecial {
				args = append(args, "-bos=false") // with add_special, as the vocabulary says
			}
			if c.ParseSpecial {
				args = append(args, "-special")
			}
			code, stdout, stderr := runCLI(t, "", args...)
			require.Equal(t, 0, code, stderr)
			assert.Equal(t, joinIDs(c.IDs), stdout, "%s: text %q add_special %v parse_special %v", name, c.Text, c.AddSpecial, c.ParseSpecial)
		}
	}
	rows := 0
	for _, c := range testfixture.ReadJSONL[struct {
		Vocab          string `json:"vocab"`
		IDs            []int  `json:"ids"`
		UnparseSpecial bool   `json:"unparse_special"`
		Text           string `json:"text"`
		Hex            string `json:"hex"`
	}](t, "golden/gguf/decode-bpe.jsonl") {
		if !c.UnparseSpecial {
			continue // the command prints special tokens
		}
		want := c.Text
		if c.Hex != "" {
			b, err := hex.DecodeString(c.Hex)
			require.NoError(t, err)
			want = string(b)
		}
		// The ids from standard input this time.
		code, stdout, stderr := runCLI(t, strings.TrimSuffix(joinIDs(c.IDs), "\n"), "tokenize", fixture(t, vocabs[c.Vocab]), "-detokenize")
		require.Equal(t, 0, code, stderr)
		assert.Equal(t, want+"\n", stdout, "%s ids %v", c.Vocab, c.IDs)
		rows++
	}
	assert.Equal(t, 180, rows)
}

func TestTokenizeDetokenize(t *testing.T) {
	vocab := fixture(t, "gguf/ggml-vocab-llama3.gguf")
	code, stdout, stderr := runCLI(t, "", "tokenize", vocab, "-detokenize", "-i", "128000 9906 1917")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "<|begin_of_text|>Hello world\n", stdout)

	code, stdout, _ = runCLI(t, "", "tokenize", vocab, "-detokenize", "-i", "9906,1917")
	require.Equal(t, 0, code)
	assert.Equal(t, "Hello world\n", stdout, "commas separate ids too")

	code, _, stderr = runCLI(t, "", "tokenize", vocab, "-detokenize", "-i", "9906 x")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: -detokenize: \"x\" is not a token id\n", stderr)
	code, _, stderr = runCLI(t, "", "tokenize", vocab, "-detokenize", "-i", "128256")
	assert.Equal(t, 1, code)
	assert.Equal(t, "error: -detokenize: token id 128256 is outside the vocabulary of 128256 tokens\n", stderr)

	// A llama2.c vocabulary decodes as run.c's decode() does: BOS's piece
	// there is "\n<s>\n", and the space after it goes.
	ckpt, tok := fixture(t, "stories260K.bin"), fixture(t, "tok512.bin")
	code, stdout, stderr = runCLI(t, "", "tokenize", ckpt, "-z", tok, "-detokenize", "-i", "1 403 407 261 378")
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "\n<s>\nOnce upon a time\n", stdout)
}
