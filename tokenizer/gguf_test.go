package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/llama2-go/llama2/gguf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vocabGGUF builds a vocabulary-only GGUF file of v's tokens, scores and
// types, with the id keys given in extra (which may also replace or, with a
// nil value, drop any key).
func vocabGGUF(t testing.TB, v Vocab, extra map[string]any) []byte {
	t.Helper()
	kvs := map[string]any{
		keyTokenizerModel: "llama",
		keyTokens:         v.Tokens,
		keyScores:         v.Scores,
		keyTokenTypes:     v.Types,
	}
	for k, x := range extra {
		kvs[k] = x
	}
	b := gguf.NewBuilder()
	b.Add("general.architecture", "llama")
	keys := []string{keyTokenizerModel, keyTokens, keyScores, keyTokenTypes, keyMerges, keyPre, keyBOS, keyEOS, keyUNK, keyPAD, keyAddBOS, keyAddEOS, keyAddSpacePrefix}
	for _, k := range append(keys, keysEOG...) {
		if x, ok := kvs[k]; ok && x != nil {
			b.Add(k, x)
		}
	}
	data, err := b.Bytes()
	require.NoError(t, err)
	return data
}

// writeTemp writes data to a file in a test's temporary folder.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

func TestLoadGGUFDefaults(t *testing.T) {
	v := testVocab("▁", "a", "▁a")
	path := writeTemp(t, "vocab.gguf", vocabGGUF(t, v, nil))
	tok, err := Load(path, 0)
	require.NoError(t, err)
	// llama.cpp's defaults for a "llama" vocabulary without the keys.
	assert.Equal(t, 1, tok.BOS())
	assert.Equal(t, 2, tok.EOS())
	assert.True(t, tok.AddBOS())
	assert.False(t, tok.AddEOS())
	assert.Equal(t, []int{1, 261}, tok.Encode("a", true, false), "a dummy prefix by default")

	path = writeTemp(t, "vocab.gguf", vocabGGUF(t, v, map[string]any{
		keyBOS: uint32(2), keyEOS: int32(1), keyAddBOS: false, keyAddEOS: true, keyAddSpacePrefix: false,
		keyScores: nil, keyTokenTypes: nil,
	}))
	tok, err = Load(path, len(v.Tokens))
	require.NoError(t, err)
	assert.Equal(t, 2, tok.BOS())
	assert.Equal(t, 1, tok.EOS())
	assert.False(t, tok.AddBOS())
	assert.True(t, tok.AddEOS())
	assert.Equal(t, []int{260}, tok.Encode("a", false, false), "no dummy prefix")
	// Without types, <0xXX> pieces are still byte tokens.
	assert.Equal(t, "\n", tok.Decode(0, 3+'\n'))

	// llama.cpp's convert-llama2c-to-ggml writes "no padding token" as a
	// uint32 -1.
	path = writeTemp(t, "vocab.gguf", vocabGGUF(t, v, map[string]any{keyPAD: uint32(1<<32 - 1)}))
	_, err = Load(path, 0)
	require.NoError(t, err)
}

func TestLoadGGUFErrors(t *testing.T) {
	v := testVocab("a")
	tests := []struct {
		name  string
		extra map[string]any
		wants string
	}{
		{"unknown model", map[string]any{keyTokenizerModel: "bert"}, `tokenizer.ggml.model "bert": unsupported operation`},
		{"no model", map[string]any{keyTokenizerModel: nil}, "has no vocabulary (tokenizer.ggml.model is missing)"},
		{"no tokens", map[string]any{keyTokens: nil}, `"tokenizer.ggml.tokens"`},
		{"scores", map[string]any{keyScores: []float32{1}}, "tokenizer.ggml.scores has 1 entries for 260 tokens"},
		{"types", map[string]any{keyTokenTypes: []int32{1, 1}}, "tokenizer.ggml.token_type has 2 entries for 260 tokens"},
		{"types type", map[string]any{keyTokenTypes: []string{"x"}}, `"tokenizer.ggml.token_type" is array of string`},
		{"bos", map[string]any{keyBOS: uint32(260)}, "tokenizer.ggml.bos_token_id is 260, outside the vocabulary of 260 tokens"},
		{"pad", map[string]any{keyPAD: int32(-5)}, "tokenizer.ggml.padding_token_id is -5"},
		{"add_bos type", map[string]any{keyAddBOS: "yes"}, `"tokenizer.ggml.add_bos_token" is string, want bool`},
		{"bad type", map[string]any{keyTokenTypes: append(make([]int32, 259), 9)}, "Types[0] (token \"<unk>\") is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "bad.gguf", vocabGGUF(t, v, tt.extra))
			_, err := Load(path, 0)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wants)
			assert.Contains(t, err.Error(), path, "the error names the file")
			if tt.name == "unknown model" {
				assert.ErrorIs(t, err, errors.ErrUnsupported)
			}
		})
	}

	good := writeTemp(t, "good.gguf", vocabGGUF(t, v, nil))
	_, err := Load(good, 512)
	require.ErrorContains(t, err, "the vocabulary has 260 tokens, the model 512")
	_, err = Load(good, -1)
	require.ErrorContains(t, err, "vocab size -1 is negative")

	corrupt := writeTemp(t, "corrupt.gguf", []byte("GGUF\x03\x00\x00\x00"))
	_, err = Load(corrupt, 0)
	require.ErrorIs(t, err, gguf.ErrFormat)

	_, err = Load(filepath.Join(t.TempDir(), "missing"), 0)
	require.ErrorIs(t, err, os.ErrNotExist)

	trailing := writeTemp(t, "tok.bin", append(tokenizerFile([]string{"a", "b"}, []float32{0, 0}), 1, 2, 3))
	_, err = Load(trailing, 0)
	require.ErrorContains(t, err, "piece 2: truncated record header (3 of 8 bytes)")
	tok, err := Load(trailing, 2)
	require.NoError(t, err, "with a vocab size, trailing bytes are ignored as before")
	assert.Equal(t, 2, tok.VocabSize())
}

func TestLoadGGUFFixtures(t *testing.T) {
	// tokenizer.bin read to its end is the same as with the model's size.
	bin, err := Load(fixture(t, "tokenizer.bin"), 0)
	require.NoError(t, err)
	assert.Equal(t, llama2Vocab, bin.VocabSize())
	_, err = Load(fixture(t, "tokenizer.bin"), llama2Vocab)
	require.NoError(t, err)

	// A GGUF model's vocabulary, checked against the model's size.
	tok, err := Load(fixture(t, "gguf/randk-f32.gguf"), tok512Vocab)
	require.NoError(t, err)
	assert.Equal(t, tok512Vocab, tok.VocabSize())
	_, err = Load(fixture(t, "gguf/randk-f32.gguf"), llama2Vocab)
	require.ErrorContains(t, err, "has 512 tokens, the model 32000")
}

func TestFromGGUF(t *testing.T) {
	data, err := os.ReadFile(fixture(t, "gguf/ggml-vocab-llama-spm.gguf"))
	require.NoError(t, err)
	f, err := gguf.Parse(data)
	require.NoError(t, err)
	tok, err := FromGGUF(f)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 15043, 3186}, tok.Encode("Hello world", true, false))
}

// bpeGGUF is vocabGGUF for a byte-level BPE vocabulary.
func bpeGGUF(t testing.TB, v Vocab, extra map[string]any) []byte {
	kvs := map[string]any{keyTokenizerModel: "gpt2", keyMerges: v.Merges, keyScores: nil}
	if v.Pre != "" {
		kvs[keyPre] = v.Pre
	}
	for k, x := range extra {
		kvs[k] = x
	}
	return vocabGGUF(t, v, kvs)
}

func TestLoadGGUFBPE(t *testing.T) {
	v := bpeVocab("qwen2", []string{"a|b", "ab|c"}, map[string]int32{"<|im_end|>": TokenControl, "<think>": TokenUserDefined})
	path := writeTemp(t, "bpe.gguf", bpeGGUF(t, v, map[string]any{
		keyEOS: uint32(len(v.Tokens) - 1), "tokenizer.ggml.eom_token_id": uint32(5),
	}))
	tok, err := Load(path, 0)
	require.NoError(t, err)
	// BPE's defaults: no BOS to add (only Llama 3's pre-tokenizer adds
	// one), no dummy prefix.
	assert.False(t, tok.AddBOS())
	assert.Equal(t, 11, tok.BOS(), "llama.cpp's default BOS for gpt2 vocabularies")
	im := idOfVocab(v, "<|im_end|>")
	assert.Equal(t, []int{5, im}, tok.EOG(), "the eom key and <|im_end|> (EOS is <think>, which is no end token by its text)")
	assert.Equal(t, []int{idOfVocab(v, "abc"), idOfVocab(v, "<think>"), 'x'}, tok.Encode("abc<think>x", false, false))

	tests := []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"no merges", map[string]any{keyMerges: nil}, `"tokenizer.ggml.merges": missing`},
		{"bad merge", map[string]any{keyMerges: []string{"a zz"}}, `Merges[0] "a zz": "zz" is not a token`},
		{"pre", map[string]any{keyPre: "mystery"}, `tokenizer.ggml.pre "mystery": unsupported operation`},
		{"eot", map[string]any{"tokenizer.ggml.eot_token_id": uint32(1 << 20)}, "tokenizer.ggml.eot_token_id is 1048576, outside the vocabulary of 260 tokens"},
		{"bos", map[string]any{keyBOS: uint32(260)}, "tokenizer.ggml.bos_token_id is 260, outside the vocabulary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTemp(t, "bad.gguf", bpeGGUF(t, v, tt.extra))
			_, err := Load(path, 0)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), path)
			if tt.name == "pre" {
				assert.ErrorIs(t, err, errors.ErrUnsupported)
			}
		})
	}
	_, err = Load(path, 300)
	require.ErrorContains(t, err, "the vocabulary has 260 tokens, the model 300")
}

// FuzzFromGGUF feeds arbitrary files to the loader: it must return
// an error or a tokenizer that encodes, never panic.
func FuzzFromGGUF(f *testing.F) {
	v := testVocab("▁", "a")
	f.Add(vocabGGUF(f, v, nil))
	f.Add(vocabGGUF(f, v, map[string]any{keyBOS: uint32(7), keyTokenTypes: []int32{6}}))
	f.Add(tokenizerFile([]string{"a", " "}, []float32{0, 1}))
	bv := bpeVocab("llama-bpe", []string{"a|b", "ab|c", " |a"}, map[string]int32{"<|eot_id|>": TokenControl})
	f.Add(bpeGGUF(f, bv, map[string]any{keyBOS: uint32(3), keyAddBOS: true}))
	bv.Pre = ""
	f.Add(bpeGGUF(f, bv, map[string]any{"tokenizer.ggml.eom_token_id": uint32(9)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		if n, err := countRecords(data); err == nil && !gguf.IsGGUF(data) {
			// (A file with GGUF's magic is read as GGUF whatever else it
			// could be.)
			_, err := Parse(data, n)
			require.NoError(t, err, "counted records must parse")
		}
		file, err := gguf.Parse(data)
		if err != nil {
			return
		}
		tok, err := FromGGUF(file)
		if err != nil {
			require.False(t, errors.Is(err, gguf.ErrFormat))
			return
		}
		for _, id := range tok.EncodeSpecial("a <s>é<|eot_id|> 123 abc", true, true) {
			require.True(t, id >= 0 && id < tok.VocabSize())
		}
		tok.Detokenize(nil, []int{0, tok.VocabSize() - 1}, true)
	})
}
