package tokenizer

// Detokenize appends to dst the text of ids, as llama.cpp's
// llama_detokenize (remove_special false) does: every token's text one
// after the other; control and unknown tokens (BOS, <|eot_id|>, ...)
// print their piece only when unparseSpecial is set (llama.cpp's
// unparse_special), user-defined tokens always do, unused ones never.
// Byte-level BPE pieces become their bytes, which need not be valid UTF-8
// (a character may be cut between tokens). Then, for the vocabularies
// whose pre-tokenizer asks for it (Llama 3's and GPT-2's, not Qwen2's),
// spaces are cleaned up as transformers' clean_up_tokenization_spaces
// does: " ?", " !", " .", " ," and " 's", " 'm", " 're", " 've" lose their
// space, a lone " ' " both; so the text of Encode's ids is not always the
// text encoded.
//
// For SentencePiece the first token loses a leading space when the
// vocabulary adds a dummy prefix; a llama2.c tokenizer prints what
// [Tokenizer.Decode] prints for each token after the one before it. Ids
// outside the vocabulary print nothing.
func (t *Tokenizer) Detokenize(dst []byte, ids []int, unparseSpecial bool) []byte {
	if t.kind == kindLlama2C {
		prev := -1
		for _, id := range ids {
			dst = append(dst, t.Decode(prev, id)...)
			prev = id
		}
		return dst
	}
	start := len(dst)
	for i, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			continue
		}
		var text string
		switch t.types[id] {
		case TokenControl, TokenUnknown:
			if unparseSpecial {
				text = t.pieces[id]
			}
		case TokenByte:
			if t.kind == kindSPM {
				text = byteStrings[t.rawByte[id]]
			}
		default:
			text = t.text[id]
		}
		if i == 0 && t.kind == kindSPM && t.addSpacePrefix && len(text) > 0 && text[0] == ' ' {
			text = text[1:]
		}
		dst = append(dst, text...)
	}
	if t.bpe != nil && t.bpe.pre.cleanSpaces {
		dst = append(dst[:start], cleanSpaces(dst[start:])...)
	}
	return dst
}

// cleanSpaces removes spaces as llama.cpp's detokenizer does for
// clean_spaces vocabularies, in three passes over the text, each reading
// what the one before wrote.
func cleanSpaces(text []byte) []byte {
	text = dropSpaceBefore(text, func(text []byte, i int) bool {
		switch text[i] {
		case '?', '!', '.', ',':
			return true
		}
		return false
	})
	text = dropLoneApostrophes(text)
	return dropSpaceBefore(text, func(text []byte, i int) bool {
		if text[i] != '\'' || i+1 >= len(text) {
			return false
		}
		switch text[i+1] {
		case 's', 'm':
			return true
		case 't', 'd':
			return false
		}
		if i+2 >= len(text) {
			return false
		}
		two := string(text[i+1 : i+3])
		return two == "re" || two == "ve"
	})
}

// dropSpaceBefore removes the space before each character at i (from the
// second on) for which drop is true; text is read as it was before the
// pass.
func dropSpaceBefore(text []byte, drop func(text []byte, i int) bool) []byte {
	out := make([]byte, 0, len(text))
	for i := range text {
		if i > 0 && text[i-1] == ' ' && drop(text, i) {
			out = out[:len(out)-1]
		}
		out = append(out, text[i])
	}
	return out
}

// dropLoneApostrophes turns " ' " into "'": the spaces on both sides go.
// The space after one such apostrophe no longer counts as the space
// before the next character.
func dropLoneApostrophes(text []byte) []byte {
	out := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		x := text[i]
		if i > 0 && x == '\'' && i+1 < len(text) && text[i-1] == ' ' && text[i+1] == ' ' {
			out = out[:len(out)-1]
			out = append(out, x)
			i++ // the space after is dropped
			if i+1 < len(text) {
				// llama.cpp blanks that space in place, so the character
				// after it does not see a space before it.
				text[i] = 0
			}
			continue
		}
		out = append(out, x)
	}
	return out
}
