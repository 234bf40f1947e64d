package tokenizer

import (
	"slices"
)

// Which tokens end a generation. GGUF files name EOS, and sometimes EOT
// (end of turn) and EOM (end of message), but chat models end their turns
// with other tokens too (Llama 3 Instruct's <|eot_id|> while the file's
// EOS may be <|end_of_text|>, Qwen's <|im_end|> and <|endoftext|>), so
// llama.cpp also recognizes them by their text; so do we.

// eogTexts are the texts llama.cpp (llama_vocab::impl::load) treats as end
// of generation, with Llama 3's <|end_of_text|> and DeepSeek's end of
// sentence (which llama.cpp takes as EOT) added, and the fill-in-the-middle
// pad, repository and file separator tokens, which llama.cpp also stops
// at.
var eogTexts = []string{
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>",
	"<|end_of_text|>", "<｜end▁of▁sentence｜>",
	"<|fim_pad|>", "<fim-pad>", "<PAD>",
	"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
	"<|file_sep|>",
}

// controlTexts are more tokens llama.cpp makes control tokens, whatever
// their type in the file (the fill-in-the-middle ones).
var controlTexts = []string{
	"<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>",
	"<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>",
	"<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>",
}

// controlByText returns types with the tokens of eogTexts and
// controlTexts made control tokens, as llama.cpp overrides them: so they
// are parsed only as special tokens and print only when asked. types is
// copied before it changes.
func controlByText(pieces []string, types []int32) []int32 {
	copied := false
	for id, p := range pieces {
		if types[id] == TokenControl || len(p) < 3 || p[0] != '<' {
			continue // every listed text starts with '<'
		}
		if slices.Contains(eogTexts, p) || slices.Contains(controlTexts, p) {
			if !copied {
				types, copied = slices.Clone(types), true
			}
			types[id] = TokenControl
		}
	}
	return types
}

// eogSet returns the end-of-generation ids of v, ascending: EOS, v.EOG,
// and the tokens whose text is one of eogTexts.
func eogSet(v Vocab, types []int32) []int {
	var ids []int
	if v.EOS >= 0 {
		ids = append(ids, v.EOS)
	}
	ids = append(ids, v.EOG...)
	for id, p := range v.Tokens {
		if types[id] == TokenControl && slices.Contains(eogTexts, p) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// IsEOG reports whether id ends a generation: the vocabulary's EOS, its
// end-of-turn and end-of-message tokens, and the tokens llama.cpp
// recognizes by their text as ending a generation (<|eot_id|>,
// <|eom_id|>, <|end_of_text|>, <|im_end|>, <|endoftext|>, ...). For a
// llama2.c tokenizer only EOS (2) does.
func (t *Tokenizer) IsEOG(id int) bool {
	if t.kind == kindLlama2C {
		return id == EOS
	}
	_, found := slices.BinarySearch(t.eog, id)
	return found
}

// EOG returns the end-of-generation ids ([Tokenizer.IsEOG]), ascending.
func (t *Tokenizer) EOG() []int {
	if t.kind == kindLlama2C {
		return []int{EOS}
	}
	return slices.Clone(t.eog)
}
