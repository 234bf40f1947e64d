package model

import (
	"errors"
	"fmt"
	"os"

	"github.com/llama2-go/llama2/gguf"
)

// GGUF metadata keys of the tokenizer.
const (
	keyTokenizerModel = "tokenizer.ggml.model"
	keyTokens         = "tokenizer.ggml.tokens"
	keyScores         = "tokenizer.ggml.scores"
	keyTokenTypes     = "tokenizer.ggml.token_type"
	keyBOS            = "tokenizer.ggml.bos_token_id"
	keyEOS            = "tokenizer.ggml.eos_token_id"
	keyUNK            = "tokenizer.ggml.unknown_token_id"
	keyPAD            = "tokenizer.ggml.padding_token_id"
	keyAddBOS         = "tokenizer.ggml.add_bos_token"
	keyAddEOS         = "tokenizer.ggml.add_eos_token"
	keyAddSpacePrefix = "tokenizer.ggml.add_space_prefix"
)

// LoadTokenizerFile reads a tokenizer from path: the vocabulary inside a
// GGUF file (a model or a vocabulary-only file), recognised by its magic, or
// else llama2.c's tokenizer.bin ([LoadTokenizer]). vocabSize is the model's
// vocabulary size, which the tokenizer must have exactly; 0 means unknown:
// a GGUF vocabulary is then taken as it is and a tokenizer.bin is read to
// its end.
func LoadTokenizerFile(path string, vocabSize int) (*Tokenizer, error) {
	if vocabSize < 0 {
		return nil, fmt.Errorf("tokenizer %s: vocab size %d is negative", path, vocabSize)
	}
	isGGUF, err := gguf.IsGGUFFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if !isGGUF {
		if vocabSize > 0 {
			return LoadTokenizer(path, vocabSize)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		n, err := countTokenizerRecords(data)
		if err != nil {
			return nil, fmt.Errorf("tokenizer %s: %w", path, err)
		}
		return ParseTokenizer(data, n, path)
	}
	// A GGUF model can be gigabytes: map it rather than read it. Parse
	// copies the strings and the getters the number arrays, so nothing
	// refers to the mapping once the tokenizer is built.
	data, unmap, err := loadFile(path, OpenOptions{Mmap: MmapOn})
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer unmap()
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", path, err)
	}
	t, err := TokenizerFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if vocabSize > 0 && t.VocabSize() != vocabSize {
		return nil, fmt.Errorf("tokenizer %s: the vocabulary has %d tokens, the model %d", path, t.VocabSize(), vocabSize)
	}
	return t, nil
}

// countTokenizerRecords returns the number of records of a tokenizer.bin
// that has nothing after its last record.
func countTokenizerRecords(data []byte) (int, error) {
	const headerSize = 4
	if len(data) < headerSize {
		return 0, fmt.Errorf("file is %d bytes, shorter than its %d-byte header", len(data), headerSize)
	}
	n := 0
	for off := headerSize; off < len(data); n++ {
		if len(data)-off < 8 {
			return 0, fmt.Errorf("piece %d: truncated record header (%d of 8 bytes)", n, len(data)-off)
		}
		length := int64(int32(uint32(data[off+4]) | uint32(data[off+5])<<8 | uint32(data[off+6])<<16 | uint32(data[off+7])<<24))
		off += 8
		if length < 0 || length > int64(len(data)-off) {
			return 0, fmt.Errorf("piece %d: length %d does not fit in the %d bytes left", n, length, len(data)-off)
		}
		off += int(length)
	}
	if n == 0 {
		return 0, errors.New("file has no pieces")
	}
	return n, nil
}

// TokenizerFromGGUF returns the tokenizer of a GGUF file's tokenizer.ggml.*
// metadata. Only SentencePiece vocabularies (tokenizer.ggml.model "llama")
// are supported. Absent keys take llama.cpp's defaults: scores 0, types
// from the pieces (see [Vocab]), BOS 1, EOS 2, UNK 0 (each only if the
// vocabulary is that large), no PAD, add_bos_token true, add_eos_token
// false, add_space_prefix true.
func TokenizerFromGGUF(f *gguf.File) (*Tokenizer, error) {
	t, err := tokenizerFromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func tokenizerFromGGUF(f *gguf.File) (*Tokenizer, error) {
	kind, err := f.String(keyTokenizerModel)
	if errors.Is(err, gguf.ErrMissing) {
		return nil, fmt.Errorf("the file has no vocabulary (%s is missing)", keyTokenizerModel)
	}
	if err != nil {
		return nil, err
	}
	if kind != "llama" {
		return nil, fmt.Errorf("tokenizer model %q is not supported yet (only \"llama\", SentencePiece)", kind)
	}
	var v Vocab
	if v.Tokens, err = f.Strings(keyTokens); err != nil {
		return nil, err
	}
	if v.Scores, err = f.Float32s(keyScores); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return nil, err
	}
	if v.Types, err = f.Int32s(keyTokenTypes); err != nil && !errors.Is(err, gguf.ErrMissing) {
		return nil, err
	}
	// NewTokenizer's errors name Vocab's fields; name the keys instead.
	if n := len(v.Tokens); v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("%s has %d entries for %d tokens", keyScores, len(v.Scores), n)
	}
	if n := len(v.Tokens); v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("%s has %d entries for %d tokens", keyTokenTypes, len(v.Types), n)
	}
	ids := []struct {
		key  string
		def  int
		dest *int
	}{{keyBOS, 1, &v.BOS}, {keyEOS, 2, &v.EOS}, {keyUNK, 0, &v.UNK}, {keyPAD, -1, &v.PAD}}
	for _, s := range ids {
		if *s.dest, err = tokenID(f, s.key, s.def, len(v.Tokens)); err != nil {
			return nil, err
		}
	}
	flags := []struct {
		key  string
		def  bool
		dest *bool
	}{
		// Without a BOS token there is nothing to add by default.
		{keyAddBOS, v.BOS >= 0, &v.AddBOS},
		{keyAddEOS, false, &v.AddEOS},
		{keyAddSpacePrefix, true, &v.AddSpacePrefix},
	}
	for _, s := range flags {
		if *s.dest, err = optionalBool(f, s.key, s.def); err != nil {
			return nil, err
		}
	}
	return NewTokenizer(v)
}

// noTokenU32 is how llama.cpp's tools store "no such token" in a uint32
// key (its token id -1): convert-llama2c-to-ggml writes it for the
// padding token.
const noTokenU32 = 1<<32 - 1

// tokenID reads an optional token id key. An absent key gives def if that
// is a token and -1 otherwise; a stored -1 (or noTokenU32) means none.
func tokenID(f *gguf.File, key string, def, n int) (int, error) {
	id, err := f.Int(key)
	switch {
	case errors.Is(err, gguf.ErrMissing):
		if def >= n {
			return -1, nil
		}
		return def, nil
	case err != nil:
		return 0, err
	case id == noTokenU32:
		return -1, nil
	case id < -1 || id >= int64(n):
		return 0, fmt.Errorf("%s is %d, outside the vocabulary of %d tokens", key, id, n)
	}
	return int(id), nil
}

// optionalBool reads a bool key that defaults to def when absent.
func optionalBool(f *gguf.File, key string, def bool) (bool, error) {
	b, err := f.Bool(key)
	if errors.Is(err, gguf.ErrMissing) {
		return def, nil
	}
	return b, err
}
