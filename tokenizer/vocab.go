package tokenizer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Token types of a SentencePiece vocabulary, numbered as SentencePiece and
// GGUF's tokenizer.ggml.token_type number them.
const (
	TokenNormal      int32 = 1 // ordinary text
	TokenUnknown     int32 = 2 // <unk>
	TokenControl     int32 = 3 // <s>, </s>, ...: never text
	TokenUserDefined int32 = 4 // text matched before anything else
	TokenUnused      int32 = 5 // a reserved slot
	TokenByte        int32 = 6 // <0xXX>, one raw byte (byte fallback)
)

// spaceMark is SentencePiece's stand-in for a space, U+2581 "▁".
const spaceMark = "\u2581"

// Vocab is a vocabulary as a GGUF file's tokenizer.ggml.* keys hold it:
// SentencePiece (llama.cpp's "llama" tokenizer model) or byte-level BPE
// ("gpt2").
type Vocab struct {
	// Model is the tokenizer model, as tokenizer.ggml.model names it:
	// "llama" (or "") for SentencePiece, "gpt2" for byte-level BPE.
	Model string
	// Tokens are the pieces, by id. SentencePiece spells spaces "▁"
	// (U+2581); byte-level BPE spells every byte of normal pieces in
	// GPT-2's alphabet (a space is "Ġ"), special pieces as they are.
	Tokens []string
	// Scores are SentencePiece's merge priorities, by id: higher merges
	// first. Nil means all 0, as llama.cpp assumes without
	// tokenizer.ggml.scores. Byte-level BPE ignores them.
	Scores []float32
	// Types are the Token* types, by id. Nil means, for SentencePiece,
	// pieces of the form <0xXX> are bytes, UNK is unknown, BOS, EOS and
	// PAD are control and the rest normal; for byte-level BPE all are
	// normal, as llama.cpp reads such a file. Either way the tokens
	// llama.cpp recognizes by their text as end of generation (see
	// [Tokenizer.EOG]) are control tokens.
	Types []int32
	// Merges are byte-level BPE's merge rules by rank, first merging
	// first: two pieces separated by a space ("Ġ t").
	Merges []string
	// Pre names byte-level BPE's pre-tokenizer (tokenizer.ggml.pre, as
	// llama.cpp names them: "llama-bpe", "qwen2", "gpt-2", "smollm",
	// ...); "" is "default".
	Pre string
	// BOS, EOS, UNK and PAD are special token ids, -1 if there is none.
	BOS, EOS, UNK, PAD int
	// EOG are more end-of-generation ids besides EOS and the tokens
	// recognized by their text (GGUF's eot, eom and FIM pad, repo and
	// separator ids).
	EOG []int
	// AddBOS and AddEOS say whether a model wants its prompts to start
	// with BOS and end with EOS; AddSpacePrefix whether text gets a "▁"
	// prefix (SentencePiece's dummy prefix) before tokenizing.
	AddBOS, AddEOS, AddSpacePrefix bool
}

// New returns a tokenizer that tokenizes as llama.cpp does with the
// vocabulary v: its SPM tokenizer for SentencePiece, its BPE tokenizer for
// byte-level BPE. v's slices are not copied and must not change
// afterwards.
//
// It checks that there is at least one token, that Scores and Types are
// absent or have one entry per token, that scores are not NaN, that types
// are known and byte tokens have the form <0xXX>, that special ids are
// tokens (or -1) and that AddBOS and AddEOS have a token to add; for
// byte-level BPE, that the pre-tokenizer is known (an unknown one wraps
// [errors.ErrUnsupported]), that every byte has its token and that every
// merge joins two tokens into a token. Duplicate pieces are allowed:
// SentencePiece encoding uses the lowest id of a piece, BPE the highest,
// as llama.cpp does. Another Model is an error wrapping
// [errors.ErrUnsupported].
func New(v Vocab) (*Tokenizer, error) {
	t, err := newTokenizerFromVocab(v)
	if err != nil {
		return nil, fmt.Errorf("vocabulary: %w", err)
	}
	return t, nil
}

func newTokenizerFromVocab(v Vocab) (*Tokenizer, error) {
	kind := kindSPM
	switch v.Model {
	case "", "llama":
	case "gpt2":
		kind = kindBPE
	default:
		return nil, fmt.Errorf("Model %q: %w (only \"llama\", SentencePiece, and \"gpt2\", byte-level BPE)", v.Model, errors.ErrUnsupported)
	}
	n := len(v.Tokens)
	if n == 0 {
		return nil, errors.New("Tokens is empty")
	}
	if v.Scores != nil && len(v.Scores) != n {
		return nil, fmt.Errorf("Scores has %d entries for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) != n {
		return nil, fmt.Errorf("Types has %d entries for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if s.id < -1 || s.id >= n {
			return nil, fmt.Errorf("%s id %d is outside the vocabulary of %d tokens (-1 for none)", s.name, s.id, n)
		}
	}
	for i, id := range v.EOG {
		if id < 0 || id >= n {
			return nil, fmt.Errorf("EOG[%d] is %d, outside the vocabulary of %d tokens", i, id, n)
		}
	}
	if v.AddBOS && v.BOS < 0 {
		return nil, errors.New("AddBOS is set but there is no BOS token")
	}
	if v.AddEOS && v.EOS < 0 {
		return nil, errors.New("AddEOS is set but there is no EOS token")
	}
	scores := v.Scores
	if scores == nil {
		scores = make([]float32, n)
	}
	for id, s := range scores {
		if s != s {
			return nil, fmt.Errorf("Scores[%d] (token %q) is NaN", id, v.Tokens[id])
		}
	}
	types := v.Types
	switch {
	case types != nil:
	case kind == kindBPE:
		types = make([]int32, n)
		for id := range types {
			types[id] = TokenNormal
		}
	default:
		types = defaultTypes(v)
	}
	for id, typ := range types {
		if typ < TokenNormal || typ > TokenByte {
			return nil, fmt.Errorf("Types[%d] (token %q) is %d, not a token type (1 to 6)", id, v.Tokens[id], typ)
		}
	}
	types = controlByText(v.Tokens, types)
	t := &Tokenizer{
		pieces:         v.Tokens,
		scores:         scores,
		ids:            make(map[string]int, n),
		spaceID:        -1,
		kind:           kind,
		bos:            v.BOS,
		eos:            v.EOS,
		unk:            v.UNK,
		pad:            v.PAD,
		addBOS:         v.AddBOS,
		addEOS:         v.AddEOS,
		addSpacePrefix: v.AddSpacePrefix,
		types:          types,
		eog:            eogSet(v, types),
	}
	t.special, t.userDefined = specialTokens(v.Tokens, types)
	if kind == kindBPE {
		if err := newBPE(t, v); err != nil {
			return nil, err
		}
		return t, nil
	}
	t.rawByte = make([]int16, n)
	t.text = make([]string, n)
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	for id, piece := range v.Tokens {
		t.rawByte[id] = -1
		switch typ := types[id]; typ {
		case TokenNormal, TokenUserDefined:
			// Only text pieces come out of merges, as in SentencePiece:
			// text that spells "</s>" or "<0x41>" stays text.
			if _, dup := t.ids[piece]; !dup && piece != "" {
				t.ids[piece] = id
			}
			if typ == TokenNormal {
				t.text[id] = strings.ReplaceAll(piece, spaceMark, " ")
			} else {
				t.text[id] = piece // llama.cpp prints user-defined pieces as they are
			}
		case TokenByte:
			b := parseRawByte(piece)
			if b < 0 {
				return nil, fmt.Errorf("Tokens[%d] %q has type byte (%d) but is not of the form <0xXX>", id, piece, TokenByte)
			}
			t.rawByte[id] = b
			if t.byteID[b] < 0 {
				t.byteID[b] = int32(id)
			}
		default:
			// Unknown, control and unused tokens are never text: they
			// decode to nothing.
		}
	}
	// llama.cpp's byte_to_token falls back to a piece that is the byte
	// itself when there is no <0xXX> token.
	for b, id := range t.byteID {
		if id < 0 {
			if one, ok := t.ids[byteStrings[b]]; ok {
				t.byteID[b] = int32(one)
			}
		}
	}
	return t, nil
}

// defaultTypes makes up token types for a vocabulary without them.
func defaultTypes(v Vocab) []int32 {
	types := make([]int32, len(v.Tokens))
	for id, piece := range v.Tokens {
		switch {
		case id == v.UNK:
			types[id] = TokenUnknown
		case id == v.BOS || id == v.EOS || id == v.PAD:
			types[id] = TokenControl
		case parseRawByte(piece) >= 0:
			types[id] = TokenByte
		default:
			types[id] = TokenNormal
		}
	}
	return types
}

// specialTokens lists the tokens that llama.cpp's tokenizer_st_partition
// splits text on: control, unknown and user-defined tokens with a non-empty
// text (an empty one would match everywhere), longest first. llama.cpp's
// sort is unstable; ties here stay in id order.
func specialTokens(pieces []string, types []int32) (special, userDefined []int) {
	for id, piece := range pieces {
		switch types[id] {
		case TokenControl, TokenUnknown, TokenUserDefined:
			if piece != "" {
				special = append(special, id)
			}
		}
	}
	slices.SortStableFunc(special, func(a, b int) int { return len(pieces[b]) - len(pieces[a]) })
	for _, id := range special {
		if types[id] == TokenUserDefined {
			userDefined = append(userDefined, id)
		}
	}
	return special, userDefined
}
