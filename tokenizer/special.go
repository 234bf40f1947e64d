package tokenizer

import "strings"

// Chat templates render special tokens as text ("<s>[INST] ... [/INST]"),
// so their output is encoded with special-token parsing; but the messages
// inside it are what users typed, where "</s>" must stay text (a user who
// writes it must not end the conversation). ProtectSpecial marks the
// special-token texts in a message before it goes into the template, and
// EncodeRendered parses the rendering's special tokens except the marked
// ones, which it encodes as the plain text they are.

// specialMark is put after the first byte of each special-token text in
// protected text, so that it no longer matches; EncodeRendered removes it.
// It is a Unicode noncharacter (U+FDD0), "for internal use", which users do
// not type; one that does is dropped from the text.
const specialMark = "\uFDD0"

// ProtectSpecial returns text with every occurrence of a special token's
// text (such as "</s>") marked, for a message that goes into a chat
// template whose output [Tokenizer.EncodeRendered] encodes. For llama2.c's
// tokenizers, which have no special-token parsing, it returns text.
func (t *Tokenizer) ProtectSpecial(text string) string {
	if t.kind == kindLlama2C {
		return text
	}
	text = strings.ReplaceAll(text, specialMark, "")
	for _, id := range t.special {
		piece := t.pieces[id]
		if len(piece) > 1 && strings.Contains(text, piece) {
			text = strings.ReplaceAll(text, piece, piece[:1]+specialMark+piece[1:])
		}
	}
	return text
}

// EncodeRendered encodes a chat template's output, whose messages went
// through [Tokenizer.ProtectSpecial]: special tokens written by the
// template are parsed (as [Tokenizer.EncodeSpecial] does), those in the
// messages are text. BOS comes first if bos is set.
func (t *Tokenizer) EncodeRendered(text string, bos bool) []int {
	switch t.kind {
	case kindSPM:
		return t.encodeSPM(text, bos, false, true)
	case kindBPE:
		return t.encodeBPE(text, bos, false, true, true)
	}
	return t.Encode(text, bos, false)
}
