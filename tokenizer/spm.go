package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// BOS returns the beginning-of-sequence token id, or -1 if the vocabulary
// has none. It is 1 ([BOS]) for llama2.c's tokenizers.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the end-of-sequence token id, or -1 if the vocabulary has
// none. It is 2 ([EOS]) for llama2.c's tokenizers.
func (t *Tokenizer) EOS() int { return t.eos }

// AddBOS reports whether the model wants prompts to start with BOS (GGUF's
// tokenizer.ggml.add_bos_token; always true for llama2.c's tokenizers).
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// AddEOS reports whether the model wants prompts to end with EOS (GGUF's
// tokenizer.ggml.add_eos_token; false for llama2.c's tokenizers).
func (t *Tokenizer) AddEOS() bool { return t.addEOS }

// IsControl reports whether id is a control token such as BOS or EOS,
// which stands for no text. llama2.c's tokenizers have no token types: there
// only BOS and EOS are.
func (t *Tokenizer) IsControl(id int) bool {
	if t.kind == kindLlama2C {
		return id == BOS || id == EOS
	}
	return id >= 0 && id < len(t.types) && t.types[id] == TokenControl
}

// EncodeSpecial is [Tokenizer.Encode] for text that may spell special
// tokens: every occurrence of the text of a control, unknown or
// user-defined token (such as "<s>" or "</s>") becomes that token, as
// llama.cpp's tokenizer does with parse_special, and the text between them
// is encoded as plain text, each piece with its own dummy prefix. Only use
// it on text from a trusted source, such as a chat template; text a user
// typed goes through Encode, so that "</s>" in it stays text.
//
// llama2.c's tokenizers have no token types, so for them EncodeSpecial is
// Encode.
func (t *Tokenizer) EncodeSpecial(text string, bos, eos bool) []int {
	switch t.kind {
	case kindSPM:
		return t.encodeSPM(text, bos, eos, true)
	case kindBPE:
		return t.encodeBPE(text, bos, eos, true, false)
	}
	return t.Encode(text, bos, eos)
}

// fragment is a piece of text to encode, or a special token (id >= 0).
type fragment struct {
	text string
	id   int
}

// encodeSPM is llama.cpp's llama_vocab::impl::tokenize for SPM vocabularies.
// A bos or eos without a token to add is ignored.
func (t *Tokenizer) encodeSPM(text string, bos, eos, parseSpecial bool) []int {
	out := make([]int, 0, len(text)+2)
	if bos && t.bos >= 0 {
		out = append(out, t.bos)
	}
	specials := t.userDefined
	if parseSpecial {
		specials = t.special
	}
	// The dummy prefix goes before the first text and before text that
	// follows a special token (llama.cpp's is_prev_special), BOS or not.
	prevSpecial := true
	for _, f := range t.partition(text, specials) {
		if f.id >= 0 {
			out = append(out, f.id)
			prevSpecial = true
			continue
		}
		// Special-token text that ProtectSpecial marked stays text
		// (chattokens.go); the marks go.
		s := strings.ReplaceAll(f.text, specialMark, "")
		if t.addSpacePrefix && prevSpecial {
			s = " " + s
		}
		out = t.encodeText(out, strings.ReplaceAll(s, " ", spaceMark))
		prevSpecial = false
	}
	if eos && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// partition splits text on the texts of the tokens specials, as llama.cpp's
// tokenizer_st_partition does: token by token, longest first, each
// splitting every text fragment at each of its leftmost non-overlapping
// occurrences. (So of two overlapping specials the longer wins, not the
// leftmost.) Fragments are never empty.
func (t *Tokenizer) partition(text string, specials []int) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{text: text, id: -1}}
	for _, id := range specials {
		piece := t.pieces[id]
		var split []fragment // nil until piece occurs somewhere
		for i, f := range frags {
			if f.id >= 0 || !strings.Contains(f.text, piece) {
				if split != nil {
					split = append(split, f)
				}
				continue
			}
			if split == nil {
				split = append(make([]fragment, 0, len(frags)+2), frags[:i]...)
			}
			s := f.text
			for {
				at := strings.Index(s, piece)
				if at < 0 {
					break
				}
				if at > 0 {
					split = append(split, fragment{text: s[:at], id: -1})
				}
				split = append(split, fragment{id: id})
				s = s[at+len(piece):]
			}
			if s != "" {
				split = append(split, fragment{text: s, id: -1})
			}
		}
		if split != nil {
			frags = split
		}
	}
	return frags
}

// encodeText appends the ids of s, text with spaces already turned into
// "▁", as llama.cpp's llm_tokenizer_spm_session: s is split into
// characters, which then merge.
//
// On invalid UTF-8 we split differently: llama.cpp takes as many bytes as a
// lead byte announces, whatever they are, so "\xe2\x96 " swallows the
// first byte of the "▁" that stands for the space, which then decodes as
// "▁". Here every byte that does not start a valid character is a character
// of its own, so any text decodes back to itself. Valid UTF-8 splits the
// same either way.
func (t *Tokenizer) encodeText(out []int, s string) []int {
	tokens := make([]int, 0, len(s))
	starts := make([]int32, 0, len(s))
	for off := 0; off < len(s); {
		_, n := utf8.DecodeRuneInString(s[off:])
		id, ok := t.ids[s[off:off+n]]
		if !ok {
			id = -1
		}
		tokens = append(tokens, id)
		starts = append(starts, int32(off))
		off += n
	}
	if len(tokens) == 0 {
		return out
	}
	return t.mergeText(out, tokens, starts, s)
}

// appendFallback appends the tokens of char, a character that is no piece:
// its bytes as byte tokens if each byte has one, or else one UNK. Without
// an UNK token the character is dropped (llama.cpp aborts).
func (t *Tokenizer) appendFallback(out []int, char string) []int {
	for i := 0; i < len(char); i++ {
		if t.byteID[char[i]] < 0 {
			if t.unk >= 0 {
				out = append(out, t.unk)
			}
			return out
		}
	}
	for i := 0; i < len(char); i++ {
		out = append(out, int(t.byteID[char[i]]))
	}
	return out
}

// decodeSPM is decode for SentencePiece vocabularies; token is in range.
func (t *Tokenizer) decodeSPM(prev, token int) (text string, rawByte bool) {
	if b := t.rawByte[token]; b >= 0 {
		return byteStrings[b], true
	}
	text = t.text[token]
	if prev == t.bos && prev >= 0 && text != "" && text[0] == ' ' {
		// run.c's rule: the dummy prefix of the first piece is not printed.
		text = text[1:]
	}
	return text, false
}
