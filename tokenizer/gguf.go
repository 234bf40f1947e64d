package tokenizer

import (
	"errors"
	"fmt"

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

// FromGGUF returns the tokenizer of a GGUF file's tokenizer.ggml.*
// metadata. Only SentencePiece vocabularies (tokenizer.ggml.model "llama")
// are supported: another model is an error that wraps
// [errors.ErrUnsupported]. Absent keys take llama.cpp's defaults: scores 0, types
// from the pieces (see [Vocab]), BOS 1, EOS 2, UNK 0 (each only if the
// vocabulary is that large), no PAD, add_bos_token true, add_eos_token
// false, add_space_prefix true.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	t, err := fromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func fromGGUF(f *gguf.File) (*Tokenizer, error) {
	kind, err := f.String(keyTokenizerModel)
	if errors.Is(err, gguf.ErrMissing) {
		return nil, fmt.Errorf("the file has no vocabulary (%s is missing)", keyTokenizerModel)
	}
	if err != nil {
		return nil, err
	}
	if kind != "llama" {
		return nil, fmt.Errorf("%s %q: %w (only \"llama\", SentencePiece)", keyTokenizerModel, kind, errors.ErrUnsupported)
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
	// New's errors name Vocab's fields; name the keys instead.
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
	return New(v)
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
