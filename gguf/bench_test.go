package gguf

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse parses llama.cpp's Llama 2 vocabulary file: 32000 tokens,
// scores and token types, which is the metadata-heavy case.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(fixture(b, filepath.Join("gguf", "ggml-vocab-llama-spm.gguf")))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVocabGetters measures reading the vocabulary out of a parsed file,
// which a tokenizer does once at load.
func BenchmarkVocabGetters(b *testing.B) {
	_, f := readFixture(b, "ggml-vocab-llama-spm.gguf")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Strings("tokenizer.ggml.tokens"); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Float32s("tokenizer.ggml.scores"); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Int32s("tokenizer.ggml.token_type"); err != nil {
			b.Fatal(err)
		}
	}
}
