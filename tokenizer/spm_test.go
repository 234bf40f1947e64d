package tokenizer

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/llama2-go/llama2/internal/testfixture"
)

// loadGGUFTokenizer reads the vocabulary of a GGUF fixture.
func loadGGUFTokenizer(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	tok, err := Load(fixture(tb, name), 0)
	require.NoError(tb, err)
	return tok
}

// spmCase is a line of golden/gguf/encode-llama-spm.jsonl.
type spmCase struct {
	Text         string `json:"text"`
	AddSpecial   bool   `json:"add_special"`
	ParseSpecial bool   `json:"parse_special"`
	IDs          []int  `json:"ids"`
}

// readJSONL decodes every line of a golden file into a T.
func readJSONL[T any](tb testing.TB, name string) []T {
	tb.Helper()
	return testfixture.ReadJSONL[T](tb, name)
}

// encodeAs encodes text as llama.cpp's llama_tokenize(add_special,
// parse_special) does.
func encodeAs(tok *Tokenizer, text string, addSpecial, parseSpecial bool) []int {
	bos, eos := addSpecial && tok.AddBOS(), addSpecial && tok.AddEOS()
	if parseSpecial {
		return tok.EncodeSpecial(text, bos, eos)
	}
	return tok.Encode(text, bos, eos)
}

func TestSPMEncodeGoldenLlamaCpp(t *testing.T) {
	spm := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama-spm.gguf")
	bin := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	require.Equal(t, llama2Vocab, spm.VocabSize())
	kinds := map[[2]bool]int{}
	for _, c := range readJSONL[spmCase](t, "golden/gguf/encode-llama-spm.jsonl") {
		kinds[[2]bool{c.AddSpecial, c.ParseSpecial}]++
		assert.Equal(t, c.IDs, encodeAs(spm, c.Text, c.AddSpecial, c.ParseSpecial),
			"text %q add_special %v parse_special %v", c.Text, c.AddSpecial, c.ParseSpecial)
		if !c.ParseSpecial {
			// Plain text: llama2.c's encoder with tokenizer.bin agrees.
			assert.Equal(t, c.IDs, bin.Encode(c.Text, c.AddSpecial, false), "tokenizer.bin, text %q", c.Text)
		}
	}
	// All three ways llama.cpp was asked are there.
	assert.Len(t, kinds, 3)
}

func TestSPMEncodeGoldenLlama2c(t *testing.T) {
	spm := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama-spm.gguf")
	for _, c := range readJSONL[spmCase](t, "golden/encode-llama2.jsonl") {
		assert.Equal(t, c.IDs, spm.Encode(c.Text, true, false), "text %q", c.Text)
	}
}

func TestSPMEncodeGoldenTok512(t *testing.T) {
	// stories260K's vocabulary inside its GGUF twin encodes as tok512.bin.
	spm := loadGGUFTokenizer(t, "gguf/stories260K-f32.gguf")
	require.Equal(t, tok512Vocab, spm.VocabSize())
	for _, c := range readJSONL[spmCase](t, "golden/encode-tok512.jsonl") {
		assert.Equal(t, c.IDs, spm.Encode(c.Text, true, false), "text %q", c.Text)
	}
}

func TestSPMAccessors(t *testing.T) {
	spm := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama-spm.gguf")
	assert.Equal(t, 1, spm.BOS())
	assert.Equal(t, 2, spm.EOS())
	assert.True(t, spm.AddBOS())
	assert.False(t, spm.AddEOS())
	assert.True(t, spm.IsControl(1))
	assert.True(t, spm.IsControl(2))
	assert.False(t, spm.IsControl(0), "<unk> is unknown, not control")
	assert.False(t, spm.IsControl(3), "a byte token")
	assert.False(t, spm.IsControl(-1))
	assert.False(t, spm.IsControl(llama2Vocab))

	bin := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	assert.Equal(t, BOS, bin.BOS())
	assert.Equal(t, EOS, bin.EOS())
	assert.True(t, bin.AddBOS())
	assert.False(t, bin.AddEOS())
	assert.True(t, bin.IsControl(BOS))
	assert.False(t, bin.IsControl(0))
}

func TestEncodeLeavesSpecialTextAlone(t *testing.T) {
	spm := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama-spm.gguf")
	const text = "Hi</s><s>there<unk>"
	plain := spm.Encode(text, false, false)
	for _, id := range plain {
		assert.False(t, spm.IsControl(id) || id == 0, "Encode gave special token %d for typed text", id)
	}
	// The typed text decodes back to itself.
	assert.Equal(t, " "+text, decodeAll(spm, plain, -1))

	special := spm.EncodeSpecial(text, false, false)
	assert.Equal(t, []int{
		6324, // ▁Hi
		2, 1, // </s> <s>
		727, // ▁there: a dummy prefix after a special token, as in llama.cpp
		0,   // <unk>
	}, special)

	// llama2.c's tokenizers know no special tokens: EncodeSpecial is Encode.
	bin := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	assert.Equal(t, bin.Encode(text, true, false), bin.EncodeSpecial(text, true, false))
}

// testVocab is a small GGUF-style vocabulary: <unk> <s> </s>, the 256 byte
// tokens, then normal pieces with ▁ for spaces.
func testVocab(normal ...string) Vocab {
	v := Vocab{BOS: 1, EOS: 2, UNK: 0, PAD: -1, AddBOS: true, AddSpacePrefix: true}
	v.Tokens = []string{"<unk>", "<s>", "</s>"}
	v.Types = []int32{TokenUnknown, TokenControl, TokenControl}
	for b := range 256 {
		v.Tokens = append(v.Tokens, fmt.Sprintf("<0x%02X>", b))
		v.Types = append(v.Types, TokenByte)
	}
	for _, p := range normal {
		v.Tokens = append(v.Tokens, p)
		v.Types = append(v.Types, TokenNormal)
	}
	v.Scores = make([]float32, len(v.Tokens))
	for i := range normal {
		// Longer pieces score higher, so that they win.
		v.Scores[259+i] = float32(len(normal[i]))
	}
	return v
}

func newTestTokenizer(t testing.TB, v Vocab) *Tokenizer {
	t.Helper()
	tok, err := New(v)
	require.NoError(t, err)
	return tok
}

// ids returns the ids of pieces in tok, failing on a piece it lacks.
func pieceIDs(t testing.TB, tok *Tokenizer, pieces ...string) []int {
	t.Helper()
	var out []int
	for _, p := range pieces {
		id := -1
		for i := range tok.VocabSize() {
			if tok.Piece(i) == p {
				id = i
				break
			}
		}
		require.NotEqual(t, -1, id, "piece %q", p)
		out = append(out, id)
	}
	return out
}

func TestSPMEncodeSynthetic(t *testing.T) {
	tok := newTestTokenizer(t, testVocab("▁", "a", "b", "▁a", "ab", "▁ab", "<", ">", "s", "<s"))
	ids := func(p ...string) []int { return pieceIDs(t, tok, p...) }

	assert.Equal(t, []int{1}, tok.Encode("", true, false), "empty text: BOS alone, no dummy prefix")
	assert.Empty(t, tok.Encode("", false, false))
	assert.Equal(t, append([]int{1}, ids("▁ab")...), tok.Encode("ab", true, false))
	assert.Equal(t, ids("▁ab", "▁ab"), tok.Encode("ab ab", false, false))
	// "<s>" typed as text: "<s" is a piece, but "<s>" is control and never
	// comes out of a merge.
	assert.Equal(t, ids("▁", "<s", ">"), tok.Encode("<s>", false, false))
	// A character with no piece becomes its UTF-8 bytes.
	assert.Equal(t, append(ids("▁"), 3+0xC3, 3+0xA9), tok.Encode("é", false, false))
	// Text that spells a byte token stays text.
	for _, id := range tok.Encode("<0x41>", false, false) {
		assert.NotEqual(t, 3+0x41, id)
	}
	assert.Equal(t, append(ids("▁ab"), 2), tok.Encode("ab", false, true), "EOS last")

	noPrefix := testVocab("a", "b", "ab", "▁", "▁a")
	noPrefix.AddSpacePrefix = false
	np := newTestTokenizer(t, noPrefix)
	assert.Equal(t, pieceIDs(t, np, "ab", "▁a"), np.Encode("ab a", false, false))
}

func TestSPMMergeOrder(t *testing.T) {
	// "ab" and "bc" tie: the leftmost merges first, as in run.c and
	// llama.cpp.
	v := testVocab("a", "b", "c", "ab", "bc", "▁")
	v.Scores[259+3], v.Scores[259+4] = 5, 5
	tok := newTestTokenizer(t, v)
	assert.Equal(t, pieceIDs(t, tok, "▁", "ab", "c"), tok.Encode("abc", false, false))

	// A higher score wins whatever its position.
	v.Scores[259+4] = 6
	tok = newTestTokenizer(t, v)
	assert.Equal(t, pieceIDs(t, tok, "▁", "a", "bc"), tok.Encode("abc", false, false))

	// llama.cpp merges at any score, where run.c needs more than -1e10.
	v = testVocab("a", "b", "ab", "▁")
	v.Scores[259+2] = -1e30
	tok = newTestTokenizer(t, v)
	assert.Equal(t, pieceIDs(t, tok, "▁", "ab"), tok.Encode("ab", false, false))
}

func TestSPMPartition(t *testing.T) {
	v := testVocab("a", "b", "c", "d", "▁")
	add := func(piece string, typ int32) {
		v.Tokens = append(v.Tokens, piece)
		v.Types = append(v.Types, typ)
		v.Scores = append(v.Scores, 0)
	}
	add("<ab>", TokenControl)
	add("<abc>", TokenControl)   // longer: split on first
	add("[u]", TokenUserDefined) // split on even in plain text
	add("<unused>", TokenUnused) // never special
	add("", TokenControl)        // empty: must not match everywhere
	tok := newTestTokenizer(t, v)
	ab, abc, u := len(v.Tokens)-5, len(v.Tokens)-4, len(v.Tokens)-3
	sp, a, b, c := pieceIDs(t, tok, "▁")[0], pieceIDs(t, tok, "a")[0], pieceIDs(t, tok, "b")[0], pieceIDs(t, tok, "c")[0]

	// Longest first: "<abc>" is cut out before "<ab>" could match inside it.
	assert.Equal(t, []int{abc, sp, a, ab}, tok.EncodeSpecial("<abc>a<ab>", false, false))
	// Each text fragment after a special token gets its own dummy prefix.
	assert.Equal(t, []int{sp, a, ab, sp, b}, tok.EncodeSpecial("a<ab>b", false, false))
	// User-defined tokens split plain text too (llama.cpp does so with
	// parse_special false); control tokens do not.
	plain := tok.Encode("a[u]c<ab>", false, false)
	assert.Equal(t, []int{sp, a, u, sp, c}, plain[:5])
	assert.NotContains(t, plain, ab)
	// Unused tokens are never matched.
	assert.NotContains(t, tok.EncodeSpecial("<unused>", false, false), len(v.Tokens)-2)
}

func TestSPMUnknownWithoutBytes(t *testing.T) {
	v := Vocab{
		Tokens: []string{"<unk>", "<s>", "</s>", "▁", "a"},
		BOS:    1, EOS: 2, UNK: 0, PAD: -1, AddSpacePrefix: true,
	}
	tok := newTestTokenizer(t, v)
	// Types absent: <unk> unknown, <s> </s> control.
	assert.True(t, tok.IsControl(1))
	assert.Equal(t, []int{3, 4, 0, 4}, tok.Encode("aéa", false, false), "one UNK for the character")
	v.UNK = -1
	tok = newTestTokenizer(t, v)
	assert.Equal(t, []int{3, 4, 4}, tok.Encode("aéa", false, false), "no UNK: the character is dropped")
}

func TestSPMDecode(t *testing.T) {
	tok := newTestTokenizer(t, testVocab("▁Hello", "▁", "x▁y"))
	ids := pieceIDs(t, tok, "▁Hello", "▁", "x▁y")
	assert.Equal(t, "Hello", tok.Decode(1, ids[0]), "after BOS the dummy prefix is dropped")
	assert.Equal(t, " Hello", tok.Decode(ids[1], ids[0]))
	assert.Equal(t, "x y", tok.Decode(ids[1], ids[2]))
	assert.Equal(t, "", tok.Decode(ids[0], 1), "control")
	assert.Equal(t, "", tok.Decode(ids[0], 0), "unknown")
	assert.Equal(t, "\n", tok.Decode(ids[0], 3+'\n'), "byte")
	assert.Equal(t, "", tok.Decode(ids[0], tok.VocabSize()))
	assert.Equal(t, "▁Hello", tok.Piece(ids[0]), "Piece is the raw vocabulary entry")
	// Multi-byte characters spelled as bytes print whole.
	assert.Equal(t, "Hello☕", decodeAll(tok, append([]int{ids[0]}, tok.Encode("☕", false, false)[1:]...), 1))
}

func TestSPMDecodeMatchesTok512(t *testing.T) {
	// What a GGUF twin prints must be what its llama2.c checkpoint prints
	// with tok512.bin: after BOS and after a normal token. The exception is
	// special tokens, which llama.cpp prints as nothing and run.c as their
	// text ("<unk>", "\n<s>\n", "\n</s>\n").
	spm := loadGGUFTokenizer(t, "gguf/stories260K-f32.gguf")
	bin := loadTokenizer(t, "tok512.bin", tok512Vocab)
	require.Equal(t, bin.VocabSize(), spm.VocabSize())
	normal := spm.Encode("Once", false, false)[0]
	require.Equal(t, " Once", spm.Decode(0, normal))
	special := 0
	for id := range spm.VocabSize() {
		if spm.types[id] == TokenControl || spm.types[id] == TokenUnknown {
			special++
			assert.Empty(t, spm.Decode(normal, id), "special token %d", id)
			continue
		}
		for _, prev := range []int{BOS, normal} {
			assert.Equal(t, bin.Decode(prev, id), spm.Decode(prev, id), "token %d after %d", id, prev)
		}
	}
	assert.Equal(t, 3, special)
}

func TestNewErrors(t *testing.T) {
	good := func() Vocab { return testVocab("a") }
	tests := []struct {
		name  string
		edit  func(*Vocab)
		wants string
	}{
		{"empty", func(v *Vocab) { *v = Vocab{} }, "Tokens is empty"},
		{"scores", func(v *Vocab) { v.Scores = v.Scores[:3] }, "Scores has 3 entries for 260 tokens"},
		{"types", func(v *Vocab) { v.Types = v.Types[1:] }, "Types has 259 entries for 260 tokens"},
		{"nan", func(v *Vocab) { v.Scores[259] = float32(nanF64()) }, `Scores[259] (token "a") is NaN`},
		{"type", func(v *Vocab) { v.Types[259] = 7 }, `Types[259] (token "a") is 7, not a token type`},
		{"byte", func(v *Vocab) { v.Types[259] = TokenByte }, `Tokens[259] "a" has type byte (6) but is not of the form <0xXX>`},
		{"bos", func(v *Vocab) { v.BOS = 260 }, "BOS id 260 is outside the vocabulary of 260 tokens"},
		{"eos", func(v *Vocab) { v.EOS = -2 }, "EOS id -2 is outside"},
		{"unk", func(v *Vocab) { v.UNK = 1000 }, "UNK id 1000 is outside"},
		{"pad", func(v *Vocab) { v.PAD = 260 }, "PAD id 260 is outside"},
		{"addbos", func(v *Vocab) { v.BOS = -1 }, "AddBOS is set but there is no BOS token"},
		{"addeos", func(v *Vocab) { v.AddEOS, v.EOS = true, -1 }, "AddEOS is set but there is no EOS token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := good()
			tt.edit(&v)
			_, err := New(v)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wants)
		})
	}
	_, err := New(good())
	require.NoError(t, err)
}

func nanF64() float64 {
	zero := 0.0
	return zero / zero
}

func TestSPMEncodeLong(t *testing.T) {
	// A long text with many special tokens stays linear enough and exact:
	// the same as encoding the pieces one by one.
	spm := loadGGUFTokenizer(t, "gguf/ggml-vocab-llama-spm.gguf")
	text := strings.Repeat("Hello world</s>", 200)
	got := spm.EncodeSpecial(text, false, false)
	one := spm.EncodeSpecial("Hello world</s>", false, false)
	rest := spm.EncodeSpecial("</s>Hello world</s>", false, false)[1:]
	want := append([]int{}, one...)
	for range 199 {
		want = append(want, rest...)
	}
	assert.Equal(t, want, got)
}

// fuzzVocab is testVocab plus "▁" and the '|'-separated pieces of spec,
// each scored by its position so that merges differ from seed to seed.
// With userDefined, the pieces starting with '[' are user-defined.
func fuzzVocab(spec string, userDefined bool) Vocab {
	v := testVocab("▁")
	for i, p := range strings.Split(spec, "|") {
		if len(v.Tokens) > 400 {
			break
		}
		typ := TokenNormal
		if userDefined && strings.HasPrefix(p, "[") {
			typ = TokenUserDefined
		}
		v.Tokens = append(v.Tokens, p)
		v.Types = append(v.Types, typ)
		v.Scores = append(v.Scores, float32((i*7919)%23)-float32(len(p)))
	}
	return v
}

// FuzzSPMEncode checks on random vocabularies and text that encoding never
// panics, gives ids of the vocabulary, and that plain Encode round-trips
// through Decode: with every byte token and "▁" in the vocabulary, any text
// without a literal "▁" comes back exactly (the dummy prefix is dropped
// after BOS).
func FuzzSPMEncode(f *testing.F) {
	f.Add("a|b|ab|▁a|▁ab|é|<0x41>|</|s>", "ab ab  é </s> <0x41>")
	f.Add("▁▁|▁▁▁|▁\n|\n", "  \n\n \t ")
	f.Add("[x]|x]|[|]", "[x][x] x] \xff\xe2\x96 ok")
	f.Add("", "")
	f.Add("Hello|▁Hello|▁world|wor|ld", "Hello world</s><s><unk>")
	f.Fuzz(func(t *testing.T, spec, text string) {
		tok, err := New(fuzzVocab(spec, false))
		require.NoError(t, err)
		inRange := func(ids []int) {
			for _, id := range ids {
				require.True(t, id >= 0 && id < tok.VocabSize(), "id %d", id)
			}
		}
		ids := tok.Encode(text, true, false)
		inRange(ids)
		for _, id := range ids[1:] {
			require.False(t, tok.IsControl(id) || id == 0, "plain text gave special token %d", id)
		}
		if !strings.Contains(text, spaceMark) {
			var got strings.Builder
			prev := ids[0]
			for _, id := range ids[1:] {
				got.WriteString(tok.Decode(prev, id))
				prev = id
			}
			require.Equal(t, text, got.String(), "ids %v", ids)
		}
		special := tok.EncodeSpecial(text, false, true)
		inRange(special)
		if !strings.Contains(text, "<s>") && !strings.Contains(text, "</s>") && !strings.Contains(text, "<unk>") {
			require.Equal(t, tok.Encode(text, false, true), special)
		}

		ud, err := New(fuzzVocab(spec, true))
		require.NoError(t, err)
		inRange(ud.Encode(text, true, true))
		inRange(ud.EncodeSpecial(text, true, true))
	})
}

func BenchmarkEncodeSPM(b *testing.B) {
	tok := loadGGUFTokenizer(b, "gguf/ggml-vocab-llama-spm.gguf")
	text := longPrompt(1000)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.EncodeSpecial(text, true, false)
	}
}
