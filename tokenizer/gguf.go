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
	keyMerges         = "tokenizer.ggml.merges"
	keyPre            = "tokenizer.ggml.pre"
)

// Keys of more end-of-generation ids (see Vocab.EOG).
var keysEOG = []string{
	"tokenizer.ggml.eot_token_id",
	"tokenizer.ggml.eom_token_id",
	"tokenizer.ggml.fim_pad_token_id",
	"tokenizer.ggml.fim_rep_token_id",
	"tokenizer.ggml.fim_sep_token_id",
}

// FromGGUF returns the tokenizer of a GGUF file's tokenizer.ggml.*
// metadata: SentencePiece (tokenizer.ggml.model "llama") or byte-level BPE
// ("gpt2"); another model, or a BPE pre-tokenizer (tokenizer.ggml.pre)
// this package does not know, is an error that wraps
// [errors.ErrUnsupported]. Absent keys take llama.cpp's defaults: scores 0,
// types from the pieces (see [Vocab]); for SentencePiece BOS 1, EOS 2, UNK
// 0 (each only if the vocabulary is that large), no PAD, add_bos_token
// true, add_space_prefix true; for BPE BOS and EOS 11, no UNK or PAD,
// add_bos_token true only for Llama 3's pre-tokenizer, pre-tokenizer
// "default"; add_eos_token false.
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
	if kind != "llama" && kind != "gpt2" {
		return nil, fmt.Errorf("%s %q: %w (only \"llama\", SentencePiece, and \"gpt2\", byte-level BPE)", keyTokenizerModel, kind, errors.ErrUnsupported)
	}
	v := Vocab{Model: kind}
	if v.Tokens, err = f.Strings(keyTokens); err != nil {
		return nil, err
	}
	bpe := kind == "gpt2"
	addBOS := true // SentencePiece's default
	if bpe {
		if v.Pre, err = f.String(keyPre); err != nil && !errors.Is(err, gguf.ErrMissing) {
			return nil, err
		}
		pre, err := lookupPre(v.Pre)
		if err != nil {
			return nil, err
		}
		addBOS = pre.addBOS
		// llama.cpp refuses a BPE file without merges.
		if v.Merges, err = f.Strings(keyMerges); err != nil {
			return nil, err
		}
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
	if bpe {
		ids[0].def, ids[1].def, ids[2].def = 11, 11, -1
	}
	for _, s := range ids {
		if *s.dest, err = tokenID(f, s.key, s.def, len(v.Tokens)); err != nil {
			return nil, err
		}
	}
	for _, key := range keysEOG {
		id, err := tokenID(f, key, -1, len(v.Tokens))
		if err != nil {
			return nil, err
		}
		if id >= 0 {
			v.EOG = append(v.EOG, id)
		}
	}
	flags := []struct {
		key  string
		def  bool
		dest *bool
	}{
		// Without a BOS token there is nothing to add by default.
		{keyAddBOS, addBOS && v.BOS >= 0, &v.AddBOS},
		{keyAddEOS, false, &v.AddEOS},
		{keyAddSpacePrefix, !bpe, &v.AddSpacePrefix},
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
