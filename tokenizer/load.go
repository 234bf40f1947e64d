package tokenizer

import (
	"fmt"
	"os"

	"github.com/llama2-go/llama2/gguf"
)

// Load reads the tokenizer in the file at path: the vocabulary inside a
// GGUF file (a model or a vocabulary-only file), told by its magic, of
// which only the metadata is read; or else llama2.c's tokenizer.bin.
// vocabSize is the model's vocabulary size, which the tokenizer must have
// exactly; 0 means unknown: a GGUF vocabulary is then taken as it is and a
// tokenizer.bin is read to its end. Errors name the file.
func Load(path string, vocabSize int) (*Tokenizer, error) {
	if vocabSize < 0 {
		return nil, fmt.Errorf("tokenizer %s: vocab size %d is negative", path, vocabSize)
	}
	isGGUF, err := gguf.IsGGUFFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !isGGUF {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		t, err := parseBin(data, vocabSize)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", path, err)
		}
		return t, nil
	}
	f, err := gguf.ReadMetadata(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	return fromGGUFSized(f, vocabSize, path)
}

// Parse is Load for a file's bytes held in memory (a GGUF file or
// llama2.c's tokenizer.bin); errors say "tokenizer" where Load's name the
// file.
func Parse(data []byte, vocabSize int) (*Tokenizer, error) {
	if vocabSize < 0 {
		return nil, fmt.Errorf("tokenizer: vocab size %d is negative", vocabSize)
	}
	if !gguf.IsGGUF(data) {
		t, err := parseBin(data, vocabSize)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		return t, nil
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return fromGGUFSized(f, vocabSize, "")
}

// parseBin parses a tokenizer.bin of vocabSize pieces, or of all its
// records when vocabSize is 0.
func parseBin(data []byte, vocabSize int) (*Tokenizer, error) {
	if vocabSize == 0 {
		n, err := countRecords(data)
		if err != nil {
			return nil, err
		}
		vocabSize = n
	}
	return parseLlama2C(data, vocabSize)
}

// fromGGUFSized is FromGGUF checked against the model's vocabulary size
// (0: any); name, when not empty, is the file's, for errors.
func fromGGUFSized(f *gguf.File, vocabSize int, name string) (*Tokenizer, error) {
	where := "tokenizer"
	if name != "" {
		where += " " + name
	}
	t, err := fromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if vocabSize > 0 && t.VocabSize() != vocabSize {
		return nil, fmt.Errorf("%s: the vocabulary has %d tokens, the model %d", where, t.VocabSize(), vocabSize)
	}
	return t, nil
}
