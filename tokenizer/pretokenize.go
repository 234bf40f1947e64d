package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// A byte-level BPE vocabulary first splits text into words with a regular
// expression (tokenizer.json's pre_tokenizer), then merges inside each
// word. The patterns use lookahead (\s+(?!\S)) and Unicode classes, which
// Go's regexp lacks, so the splitters below are written by hand, as
// llama.cpp's unicode.cpp writes its GPT-2 and Llama 3 ones. They were
// chosen over github.com/dlclark/regexp2/v2 v2.13.3 (a backtracking engine
// with lookahead and \p{..}) by measuring both with Llama 3's pattern:
//
//   - correctness: both split the 126 texts of encode-llama3.jsonl and the
//     1 MiB text of BenchmarkPreTokenize into the same words;
//   - speed: on that text regexp2 took 56-59 ms (FindNextMatch, median of
//     5), the hand-written splitter 5.6 ms (BenchmarkPreTokenize), on the
//     same AMD EPYC (Zen 4) under the same load; encoding as a whole takes
//     about 30 ms, so regexp2 would triple it;
//   - dependencies and safety: no module to add, and a single pass, linear
//     in the text whatever it holds (a backtracking engine needs a
//     timeout to be safe on hostile text).
//
// Unicode classes come from Go's unicode package (Unicode 17), llama.cpp's
// from its own tables; they differ only on code points assigned since.
//
// Each splitter is one of llama.cpp's pre-tokenizer stages: it splits
// text[start:end] into pieces and appends each piece's end offset. A
// pipeline of stages splits every piece of the previous stage again.

// splitFunc is one stage of a pre-tokenizer.
type splitFunc func(s *scanner, start, end int, ends []int) []int

// preTokenizer is how one tokenizer.ggml.pre value tokenizes.
type preTokenizer struct {
	stages []splitFunc
	// ignoreMerges: a word that is a vocabulary entry is emitted whole,
	// before any merge (Llama 3's tokenizer.json "ignore_merges").
	ignoreMerges bool
	// cleanSpaces: Detokenize removes the spaces transformers'
	// clean_up_tokenization_spaces removes.
	cleanSpaces bool
	// addBOS is add_bos_token's default.
	addBOS bool
}

var (
	preLlama3 = []splitFunc{splitLlama3}
	preQwen2  = []splitFunc{splitQwen2}
	preGPT2   = []splitFunc{splitGPT2}
	// `\p{N}` then GPT-2's pattern.
	preStarcoder = []splitFunc{splitEachNumber, splitGPT2}
	// `[\p{P}\$\+<=>\^~\|]+`, GPT-2's pattern, `\p{N}+`, `[0-9][0-9][0-9]`.
	preDefault = []splitFunc{splitPunctRuns, splitGPT2, splitNumberRuns, splitDigitTriples}
)

// preTokenizers maps tokenizer.ggml.pre to its pre-tokenizer, as
// llama.cpp's llama_vocab::impl::load does, for the pre-tokenizers built
// from the patterns above. A missing key is "default".
var preTokenizers = map[string]preTokenizer{
	"default":          {stages: preDefault, cleanSpaces: true},
	"llama3":           {stages: preLlama3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"llama-v3":         {stages: preLlama3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"llama-bpe":        {stages: preLlama3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"falcon3":          {stages: preLlama3, ignoreMerges: true, cleanSpaces: true, addBOS: true},
	"dbrx":             {stages: preLlama3, cleanSpaces: true},
	"smaug-bpe":        {stages: preLlama3, cleanSpaces: true},
	"qwen2":            {stages: preQwen2},
	"deepseek-r1-qwen": {stages: preQwen2},
	"stablelm2":        {stages: preQwen2, cleanSpaces: true},
	"megrez":           {stages: preQwen2, cleanSpaces: true},
	"gpt-2":            {stages: preGPT2, cleanSpaces: true},
	"phi-2":            {stages: preGPT2, cleanSpaces: true},
	"jina-es":          {stages: preGPT2, cleanSpaces: true},
	"jina-de":          {stages: preGPT2, cleanSpaces: true},
	"gigachat":         {stages: preGPT2, cleanSpaces: true},
	"jina-v1-en":       {stages: preGPT2, cleanSpaces: true},
	"jina-v2-es":       {stages: preGPT2, cleanSpaces: true},
	"jina-v2-de":       {stages: preGPT2, cleanSpaces: true},
	"jina-v2-code":     {stages: preGPT2, cleanSpaces: true},
	"roberta-bpe":      {stages: preGPT2, cleanSpaces: true},
	"mpt":              {stages: preGPT2, cleanSpaces: true},
	"olmo":             {stages: preGPT2, cleanSpaces: true},
	"jais":             {stages: preGPT2, cleanSpaces: true},
	"starcoder":        {stages: preStarcoder, cleanSpaces: true},
	"refact":           {stages: preStarcoder, cleanSpaces: true},
	"codeshell":        {stages: preStarcoder, cleanSpaces: true},
	"exaone":           {stages: preStarcoder, cleanSpaces: true},
	"minerva-7b":       {stages: preStarcoder, cleanSpaces: true},
	"command-r":        {stages: preStarcoder},
	"smollm":           {stages: preStarcoder},
}

// lookupPre returns the pre-tokenizer named name ("" is "default"); an
// unknown name is an error naming it.
func lookupPre(name string) (preTokenizer, error) {
	if name == "" {
		name = "default"
	}
	p, ok := preTokenizers[name]
	if !ok {
		return p, fmt.Errorf("%s %q: %w (no pre-tokenizer of that name)", keyPre, name, errors.ErrUnsupported)
	}
	return p, nil
}

// split appends to ends the end offset of every word of text.
func (p *preTokenizer) split(s *scanner, ends []int) []int {
	ends = p.stages[0](s, 0, len(s.text), ends)
	for _, stage := range p.stages[1:] {
		prev := ends
		ends = make([]int, 0, len(prev)+len(prev)/2)
		start := 0
		for _, end := range prev {
			ends = stage(s, start, end, ends)
			start = end
		}
	}
	return ends
}

// contraction returns the length of the English contraction ('s, 't,
// 're, 've, 'm, 'll, 'd) that starts text (at its apostrophe), or 0. With
// anyCase, the letters match in either case (Llama 3's (?i:...)).
func contraction(text string, anyCase bool) int {
	if len(text) < 2 || text[0] != '\'' {
		return 0
	}
	lower := func(c byte) byte {
		if anyCase && 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	switch lower(text[1]) {
	case 's', 't', 'm', 'd':
		return 2
	}
	if len(text) >= 3 {
		switch string([]byte{lower(text[1]), lower(text[2])}) {
		case "re", "ve", "ll":
			return 3
		}
	}
	return 0
}

// classAt is the class at i, or classNone past end: nothing matches there,
// as llama.cpp's splitters see no character past a fragment's end.
const classNone uint8 = 0xFF

func (s *scanner) classAt(i, end int) uint8 {
	if i >= end {
		return classNone
	}
	c, _ := s.at(i)
	return c
}

// skipClass returns the offset after the run of characters of class c
// that starts at i, and the run's length in characters.
func (s *scanner) skipClass(i, end int, c uint8) (int, int) {
	n := 0
	for i < end {
		ci, size := s.at(i)
		if ci != c {
			break
		}
		i += size
		n++
	}
	return i, n
}

// skipOther is skipClass for "other": [^\s\p{L}\p{N}].
func (s *scanner) skipOther(i, end int) int {
	i, _ = s.skipClass(i, end, classOther)
	return i
}

// spaces scans the run of whitespace at i: its end, the start of its
// last character, its length in characters, and the offset after its
// last \r or \n (-1 without one).
func (s *scanner) spaces(i, end int) (runEnd, lastStart, n, afterNewline int) {
	afterNewline, lastStart = -1, i
	for i < end {
		c, size := s.at(i)
		if c != classSpace {
			break
		}
		if b := s.text[i]; b == '\r' || b == '\n' {
			afterNewline = i + 1
		}
		lastStart = i
		i += size
		n++
	}
	return i, lastStart, n, afterNewline
}

// splitLlama3 is Llama 3's pattern:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(s *scanner, start, end int, ends []int) []int {
	return splitLlama3Digits(s, start, end, ends, 3)
}

// splitQwen2 is Qwen2's: Llama 3's with \p{N} for \p{N}{1,3}.
func splitQwen2(s *scanner, start, end int, ends []int) []int {
	return splitLlama3Digits(s, start, end, ends, 1)
}

func splitLlama3Digits(s *scanner, pos, end int, ends []int, digits int) []int {
	for pos < end {
		c, size := s.at(pos)
		b := s.text[pos]
		if n := contraction(s.text[pos:end], true); n > 0 {
			pos += n
			ends = append(ends, pos)
			continue
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if b != '\r' && b != '\n' && c != classNumber &&
			(c == classLetter || s.classAt(pos+size, end) == classLetter) {
			pos, _ = s.skipClass(pos+size, end, classLetter)
			ends = append(ends, pos)
			continue
		}
		// \p{N}{1,digits}
		if c == classNumber {
			n := 0
			for pos < end {
				ci, size := s.at(pos)
				if ci != classNumber {
					break
				}
				pos += size
				if n++; n == digits {
					ends = append(ends, pos)
					n = 0
				}
			}
			if n > 0 {
				ends = append(ends, pos)
			}
			continue
		}
		// ` ?[^\s\p{L}\p{N}]+[\r\n]*`
		if c == classOther || b == ' ' && s.classAt(pos+1, end) == classOther {
			if b == ' ' {
				pos++
			}
			pos = s.skipOther(pos, end)
			for pos < end && (s.text[pos] == '\r' || s.text[pos] == '\n') {
				pos++
			}
			ends = append(ends, pos)
			continue
		}
		runEnd, lastStart, n, afterNewline := s.spaces(pos, end)
		switch {
		case afterNewline >= 0: // \s*[\r\n]+
			pos = afterNewline
		case n > 1 && runEnd < end: // \s+(?!\S): all but the last
			pos = lastStart
		case n > 0: // \s+
			pos = runEnd
		default: // unreachable: every character has a class
			pos += size
		}
		ends = append(ends, pos)
	}
	return ends
}

// splitGPT2 is GPT-2's pattern:
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func splitGPT2(s *scanner, pos, end int, ends []int) []int {
	for pos < end {
		c, size := s.at(pos)
		if n := contraction(s.text[pos:end], false); n > 0 {
			pos += n
			ends = append(ends, pos)
			continue
		}
		// An optional space, then a run of one class.
		c2, from := c, pos
		if s.text[pos] == ' ' {
			c2, from = s.classAt(pos+1, end), pos+1
		}
		if c2 == classLetter || c2 == classNumber || c2 == classOther {
			pos, _ = s.skipClass(from, end, c2)
			ends = append(ends, pos)
			continue
		}
		runEnd, lastStart, n, _ := s.spaces(pos, end)
		switch {
		case n > 1 && runEnd < end: // \s+(?!\S)
			pos = lastStart
		case n > 0:
			pos = runEnd
		default:
			pos += size
		}
		ends = append(ends, pos)
	}
	return ends
}

// splitRuns splits at the edges of runs of characters for which in is
// true (each run a piece, as is the text between runs); with each set,
// every such character is a piece of its own.
func splitRuns(s *scanner, pos, end int, ends []int, in func(i int) (bool, int), each bool) []int {
	for pos < end {
		match, size := in(pos)
		pos += size
		for pos < end {
			m, size := in(pos)
			if m != match || m && each {
				break
			}
			pos += size
		}
		ends = append(ends, pos)
	}
	return ends
}

func (s *scanner) isNumber(i int) (bool, int) {
	c, size := s.at(i)
	return c == classNumber, size
}

// isDefaultPunct is the "default" pre-tokenizer's [\p{P}\$\+<=>\^~\|].
func (s *scanner) isDefaultPunct(i int) (bool, int) {
	if b := s.text[i]; b < 0x80 {
		return strings.IndexByte("$+<=>^~|", b) >= 0 || asciiPunct(b), 1
	}
	return s.punct(i)
}

func asciiPunct(b byte) bool { return classify(rune(b))&classPunct != 0 }

// splitEachNumber is `\p{N}`: every number character alone.
func splitEachNumber(s *scanner, start, end int, ends []int) []int {
	return splitRuns(s, start, end, ends, s.isNumber, true)
}

// splitNumberRuns is `\p{N}+`.
func splitNumberRuns(s *scanner, start, end int, ends []int) []int {
	return splitRuns(s, start, end, ends, s.isNumber, false)
}

// splitPunctRuns is `[\p{P}\$\+<=>\^~\|]+`.
func splitPunctRuns(s *scanner, start, end int, ends []int) []int {
	return splitRuns(s, start, end, ends, s.isDefaultPunct, false)
}

// splitDigitTriples is `[0-9][0-9][0-9]`: each three ASCII digits, from the
// left of a run, are a piece; digits left over belong to the text between.
func splitDigitTriples(s *scanner, pos, end int, ends []int) []int {
	isDigit := func(i int) bool { return i < end && '0' <= s.text[i] && s.text[i] <= '9' }
	gap := pos // start of the text since the last piece
	for pos < end {
		if isDigit(pos) && isDigit(pos+1) && isDigit(pos+2) {
			if gap < pos {
				ends = append(ends, pos)
			}
			pos += 3
			ends = append(ends, pos)
			gap = pos
			continue
		}
		pos++
	}
	if gap < end {
		ends = append(ends, end)
	}
	return ends
}
