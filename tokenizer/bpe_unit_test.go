package tokenizer

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gpt2Piece spells text in GPT-2's byte alphabet, as vocabularies store it.
func gpt2Piece(text string) string { return string(mapBytes(nil, text)) }

// bpeVocab is a byte-level BPE vocabulary: the 256 byte tokens, then one
// token per merge, merges given as texts "a|b" (spelled as text, not in
// GPT-2's alphabet), then the extra tokens with their types.
func bpeVocab(pre string, merges []string, extra map[string]int32) Vocab {
	v := Vocab{Model: "gpt2", Pre: pre, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	for b := range 256 {
		v.Tokens = append(v.Tokens, gpt2Piece(string([]byte{byte(b)})))
		v.Types = append(v.Types, TokenNormal)
	}
	seen := map[string]bool{}
	for _, m := range merges {
		a, b, _ := strings.Cut(m, "|")
		v.Merges = append(v.Merges, gpt2Piece(a)+" "+gpt2Piece(b))
		if !seen[a+b] {
			seen[a+b] = true
			v.Tokens = append(v.Tokens, gpt2Piece(a+b))
			v.Types = append(v.Types, TokenNormal)
		}
	}
	for _, text := range slices.Sorted(func(yield func(string) bool) {
		for k := range extra {
			if !yield(k) {
				return
			}
		}
	}) {
		v.Tokens = append(v.Tokens, text)
		v.Types = append(v.Types, extra[text])
	}
	return v
}

// idOf returns the id of a token by its text.
func idOf(t testing.TB, tok *Tokenizer, text string) int {
	t.Helper()
	for id := range tok.VocabSize() {
		if tok.Piece(id) == gpt2Piece(text) || tok.Piece(id) == text {
			return id
		}
	}
	t.Fatalf("no token %q", text)
	return -1
}

func TestBPEMergeOrder(t *testing.T) {
	// "a b" ranks before "b c": "abc" merges a+b first, then nothing
	// joins "ab" and "c". Ranks decide, not token ids or lengths.
	tok := newTestTokenizer(t, bpeVocab("gpt-2", []string{"a|b", "b|c", "ab|c", "x|x", "xx|x"}, nil))
	assert.Equal(t, []int{idOf(t, tok, "abc")}, tok.Encode("abc", false, false))
	tok2 := newTestTokenizer(t, bpeVocab("gpt-2", []string{"b|c", "a|b", "ab|c"}, nil))
	assert.Equal(t, []int{idOf(t, tok2, "a"), idOf(t, tok2, "bc")}, tok2.Encode("abc", false, false), "b c ranks first now")
	// Equal pairs merge leftmost first: "xxx" is "xx" "x", then "xxx".
	xx, x := idOf(t, tok, "xx"), idOf(t, tok, "x")
	assert.Equal(t, []int{idOf(t, tok, "xxx")}, tok.Encode("xxx", false, false))
	assert.Equal(t, []int{xx, xx}, tok.Encode("xxxx", false, false), `"x x" ranks before "xx x"`)
	assert.Equal(t, []int{xx, idOf(t, tok, "xxx")}, tok.Encode("xxxxx", false, false))
	assert.Equal(t, []int{x}, tok.Encode("x", false, false))
}

// naiveMerge is the textbook merge loop, for checking both mergers.
func naiveMerge(tok *Tokenizer, word string) []int {
	var syms []int32
	for i := 0; i < len(word); i++ {
		syms = append(syms, tok.bpe.byteToken[word[i]])
	}
	for {
		best, rank := -1, noRank
		var merged int32
		for i := 0; i+1 < len(syms); i++ {
			if r, m := tok.bpe.pairs.lookup(syms[i], syms[i+1]); r < rank {
				best, rank, merged = i, r, m
			}
		}
		if best < 0 {
			break
		}
		syms[best] = merged
		syms = slices.Delete(syms, best+1, best+2)
	}
	out := make([]int, len(syms))
	for i, s := range syms {
		out[i] = int(s)
	}
	return out
}

// TestBPEMergersAgree: the rescanning merger of short words and the heap of
// long ones give the textbook loop's tokens on random words over a small
// alphabet (many competing merges), below and above smallWord.
func TestBPEMergersAgree(t *testing.T) {
	var merges []string
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "b", "c"}
	for len(merges) < 60 {
		a, b := pieces[r.IntN(len(pieces))], pieces[r.IntN(len(pieces))]
		if len(a)+len(b) > 6 || slices.Contains(pieces, a+b) {
			continue
		}
		merges = append(merges, a+"|"+b)
		pieces = append(pieces, a+b)
	}
	tok := newTestTokenizer(t, bpeVocab("gpt-2", merges, nil))
	for n := range 200 {
		word := make([]byte, 2+n%(3*smallWord))
		for i := range word {
			word[i] = "abc"[r.IntN(3)]
		}
		var sc bpeScratch
		got := tok.encodeWord(nil, string(word), &sc)
		require.Equal(t, naiveMerge(tok, string(word)), got, "word %q (%d bytes)", word, len(word))
	}
}

func TestBPEIgnoreMerges(t *testing.T) {
	// "abc" is a token, but merges make "a" "bc" of it; Llama 3's
	// pre-tokenizer emits a word that is a token whole.
	v := bpeVocab("llama-bpe", []string{"b|c"}, map[string]int32{gpt2Piece("abc"): TokenNormal})
	tok := newTestTokenizer(t, v)
	assert.Equal(t, []int{idOf(t, tok, "abc")}, tok.Encode("abc", false, false))
	v.Pre = "dbrx" // the same pattern, merges as usual
	tok = newTestTokenizer(t, v)
	assert.Equal(t, []int{idOf(t, tok, "a"), idOf(t, tok, "bc")}, tok.Encode("abc", false, false))
}

// TestBPERoundTrip: any bytes, invalid UTF-8 included, encode and decode
// back to themselves (Qwen2's pre-tokenizer does not clean up spaces).
func TestBPERoundTrip(t *testing.T) {
	tok := newTestTokenizer(t, bpeVocab("qwen2", []string{"a|b", "ab|c", " |a"}, nil))
	for _, text := range []string{"", "abc abc", "\xff\xfe a\xe2\x82", "é 12345 ,,, \r\n\n  x", "日本語\x00\x01"} {
		ids := tok.Encode(text, false, false)
		assert.Equal(t, text, string(tok.Detokenize(nil, ids, false)), "text %q ids %v", text, ids)
	}
}

func TestBPEStreamingDecode(t *testing.T) {
	tok := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama3.gguf")
	text := "Füße ☕ 日本語 🤷‍♀️ done"
	ids := tok.Encode(text, true, false)
	var single bool // some token is a lone byte of a multi-byte character
	for _, id := range ids {
		if !utf8.ValidString(tok.Decode(-1, id)) {
			single = true
		}
	}
	require.True(t, single, "the text must split a character between tokens")
	d := tok.NewTextDecoder()
	var out []byte
	prev := -1
	for _, id := range ids {
		out = d.Append(out, prev, id)
		prev = id
	}
	assert.Equal(t, text, string(out), "BOS prints nothing, every character whole")
}

func TestCleanSpaces(t *testing.T) {
	for in, want := range map[string]string{
		"Hi , there . Yes ! No ?":    "Hi, there. Yes! No?",
		"it 's I 'm we 're they 've": "it's I'm we're they've",
		"don 't I 'd we 'll":         "don 't I 'd we 'll",
		"a ' b":                      "a'b",
		" ' ' x":                     "'' x",
		"x '":                        "x '",
		" .":                         ".",
		". ,":                        ".,",
	} {
		assert.Equal(t, want, string(cleanSpaces([]byte(in))), "%q", in)
	}
}

func TestBPEEOG(t *testing.T) {
	v := bpeVocab("llama-bpe", nil, map[string]int32{
		"<|eom_id|>": TokenNormal, "<|eot_id|>": TokenControl, "<|end_of_text|>": TokenUserDefined,
		"<|python_tag|>": TokenControl, "<|fim_prefix|>": TokenNormal,
	})
	v.EOS = idOfVocab(v, "<|eot_id|>")
	types := slices.Clone(v.Types)
	tok := newTestTokenizer(t, v)
	assert.Equal(t, types, v.Types, "the caller's types are not changed")
	eom, eot, end := idOfVocab(v, "<|eom_id|>"), idOfVocab(v, "<|eot_id|>"), idOfVocab(v, "<|end_of_text|>")
	assert.Equal(t, slices.Sorted(slices.Values([]int{eom, eot, end})), tok.EOG())
	for _, id := range tok.EOG() {
		assert.True(t, tok.IsEOG(id))
		assert.True(t, tok.IsControl(id), "llama.cpp makes %q a control token", tok.Piece(id))
	}
	assert.False(t, tok.IsEOG(idOfVocab(v, "<|python_tag|>")))
	assert.True(t, tok.IsControl(idOfVocab(v, "<|fim_prefix|>")))
	assert.False(t, tok.IsEOG(0))
	// Extra ids from the file's keys.
	v.EOG = []int{5}
	tok = newTestTokenizer(t, v)
	assert.True(t, tok.IsEOG(5))

	llama2c := loadTokenizer(t, "tok512.bin", tok512Vocab)
	assert.Equal(t, []int{EOS}, llama2c.EOG())
	assert.True(t, llama2c.IsEOG(EOS))
	assert.False(t, llama2c.IsEOG(BOS))
}

func idOfVocab(v Vocab, text string) int { return slices.Index(v.Tokens, text) }

func TestBPENewErrors(t *testing.T) {
	good := bpeVocab("gpt-2", []string{"a|b"}, nil)
	tests := []struct {
		name string
		edit func(v *Vocab)
		want string
	}{
		{"merge piece", func(v *Vocab) { v.Merges = []string{"a zz"} }, `Merges[0] "a zz": "zz" is not a token`},
		{"merged", func(v *Vocab) { v.Merges = append(v.Merges, "b a") }, `Merges[1] "b a": the merged "ba" is not a token`},
		{"no space", func(v *Vocab) { v.Merges = []string{"ab"} }, `Merges[0] "ab" is not two pieces separated by a space`},
		{"byte", func(v *Vocab) { v.Tokens[0] = "zzz" }, `no token "Ā" for the byte 0x00`},
		{"pre", func(v *Vocab) { v.Pre = "klingon" }, `tokenizer.ggml.pre "klingon"`},
		{"model", func(v *Vocab) { v.Model = "bert" }, `Model "bert"`},
		{"eog", func(v *Vocab) { v.EOG = []int{1 << 20} }, "EOG[0] is 1048576, outside the vocabulary"},
		{"eos", func(v *Vocab) { v.EOS = len(v.Tokens) }, "EOS id 257 is outside the vocabulary of 257 tokens"},
		{"type", func(v *Vocab) { v.Types[3] = 7 }, "Types[3]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good
			v.Tokens, v.Types, v.Merges = slices.Clone(good.Tokens), slices.Clone(good.Types), slices.Clone(good.Merges)
			tt.edit(&v)
			_, err := New(v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.name == "pre" || tt.name == "model" {
				assert.ErrorIs(t, err, errors.ErrUnsupported)
			}
		})
	}
}

func TestPreTokenizers(t *testing.T) {
	split := func(pre, text string) []string {
		p, err := lookupPre(pre)
		require.NoError(t, err)
		s := scanner{text: text, classes: classTable()}
		var words []string
		start := 0
		for _, end := range p.split(&s, nil) {
			words = append(words, text[start:end])
			start = end
		}
		return words
	}
	// Each of the default's four stages shows here: punctuation runs,
	// GPT-2's words, number runs, triples of ASCII digits.
	assert.Equal(t, []string{"x", "+=", " ", "123", "456", "abc", "!?", " ", " y"}, split("default", "x+= 123456abc!?  y"))
	assert.Equal(t, []string{"1", "2", "3", "ab", " ", "4", "5"}, split("smollm", "123ab 45"))
	assert.Equal(t, []string{"123", "45", " I", "'M", "\n\n", "  ", " x"}, split("llama3", "12345 I'M\n\n   x"))
	assert.Equal(t, []string{"12", " I", "'", "M", " x"}, split("gpt-2", "12 I'M x"))
	_, err := lookupPre("nope")
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

// FuzzBPEEncode encodes arbitrary bytes with a small vocabulary of many
// competing merges: every word's tokens are the textbook merge loop's, the
// ids decode back to the bytes, and special tokens are split out only
// where asked.
func FuzzBPEEncode(f *testing.F) {
	v := bpeVocab("qwen2", []string{"a|b", "b|c", "ab|c", "a|a", "aa|a", " |a", " a|b", "1|2", "\xc3|\xa9", "é|é"},
		map[string]int32{"<|im_end|>": TokenControl, "<tool>": TokenUserDefined})
	tok, err := New(v)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "abc aab  aaaa\n\n", "<|im_end|><tool>x", "12 1234 ééé", "\xff\xc3", strings.Repeat("ab", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text, false, false)
		require.Equal(t, text, string(tok.Detokenize(nil, ids, false)), "ids %v", ids)
		special := tok.EncodeSpecial(text, false, false)
		require.Equal(t, text, string(tok.Detokenize(nil, special, true)))
		// Word by word, the tokens are the textbook loop's.
		s := scanner{text: text, classes: classTable()}
		want := []int{}
		start := 0
		for _, end := range tok.bpe.pre.split(&s, nil) {
			want = append(want, naiveMerge(tok, text[start:end])...)
			start = end
		}
		if !strings.Contains(text, "<tool>") {
			require.Equal(t, want, ids)
		}
	})
}
