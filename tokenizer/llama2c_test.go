package tokenizer

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vocabulary sizes of the fixture tokenizers.
const (
	llama2Vocab = 32000
	tok512Vocab = 512
)

func loadTokenizer(tb testing.TB, name string, vocabSize int) *Tokenizer {
	tb.Helper()
	tok, err := Load(fixture(tb, name), vocabSize)
	require.NoError(tb, err)
	require.Equal(tb, vocabSize, tok.VocabSize())
	return tok
}

// fixtureTokenizers are the two real vocabularies, by fixture name.
var fixtureTokenizers = []struct {
	file   string
	vocab  int
	golden string
}{
	{"tokenizer.bin", llama2Vocab, "golden/encode-llama2.jsonl"},
	{"tok512.bin", tok512Vocab, "golden/encode-tok512.jsonl"},
}

// tokenizerFile builds a tokenizer file in llama2.c's format.
func tokenizerFile(pieces []string, scores []float32) []byte {
	data := binary.LittleEndian.AppendUint32(nil, 16)
	for i, p := range pieces {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(scores[i]))
		data = binary.LittleEndian.AppendUint32(data, uint32(len(p)))
		data = append(data, p...)
	}
	return data
}

// referenceEncode is a direct port of llama2.c run.c's encode(), quadratic
// merge loop included, to check the fast Encode against. Its only
// deviations from run.c are Encode's documented ones: a missing " " piece is
// skipped, and a raw-byte id beyond the vocabulary becomes 0.
func referenceEncode(t *Tokenizer, text string, bos, eos bool) []int {
	lookup := func(s string) int {
		if id, ok := t.ids[s]; ok {
			return id
		}
		return -1
	}
	tokens := []int{}
	if bos {
		tokens = append(tokens, 1)
	}
	if len(text) > 0 {
		if dummy := lookup(" "); dummy != -1 {
			tokens = append(tokens, dummy)
		}
	}
	buf := make([]byte, 0, 4)
	for c := 0; c < len(text); c++ {
		if text[c]&0xC0 != 0x80 {
			buf = buf[:0]
		}
		buf = append(buf, text[c])
		next := byte(0) // the C string's terminating NUL
		if c+1 < len(text) {
			next = text[c+1]
		}
		if next&0xC0 == 0x80 && len(buf) < 4 {
			continue
		}
		if id := lookup(string(buf)); id != -1 {
			tokens = append(tokens, id)
		} else {
			for _, b := range buf {
				id := int(b) + 3
				if id >= t.VocabSize() {
					id = 0
				}
				tokens = append(tokens, id)
			}
		}
		buf = buf[:0]
	}
	for {
		bestScore := float32(-1e10)
		bestID, bestIdx := -1, -1
		for i := 0; i < len(tokens)-1; i++ {
			id := lookup(t.Piece(tokens[i]) + t.Piece(tokens[i+1]))
			if id != -1 && t.scores[id] > bestScore {
				bestScore, bestID, bestIdx = t.scores[id], id, i
			}
		}
		if bestIdx == -1 {
			break
		}
		tokens[bestIdx] = bestID
		tokens = append(tokens[:bestIdx+1], tokens[bestIdx+2:]...)
	}
	if eos {
		tokens = append(tokens, 2)
	}
	return tokens
}

func TestEncodeGolden(t *testing.T) {
	for _, ft := range fixtureTokenizers {
		t.Run(ft.file, func(t *testing.T) {
			tok := loadTokenizer(t, ft.file, ft.vocab)
			f, err := os.Open(fixture(t, ft.golden))
			require.NoError(t, err)
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			lines := 0
			for sc.Scan() {
				var c struct {
					Text string `json:"text"`
					IDs  []int  `json:"ids"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &c))
				assert.Equal(t, c.IDs, tok.Encode(c.Text, true, false), "text %q", c.Text)
				assert.Equal(t, c.IDs, referenceEncode(tok, c.Text, true, false), "reference, text %q", c.Text)
				lines++
			}
			require.NoError(t, sc.Err())
			require.NotZero(t, lines)
		})
	}
}

func TestEncodeBOSEOS(t *testing.T) {
	tok := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	assert.Empty(t, tok.Encode("", false, false))
	assert.Equal(t, []int{BOS}, tok.Encode("", true, false))
	assert.Equal(t, []int{BOS, EOS}, tok.Encode("", true, true))
	assert.Equal(t, []int{22172, 3186, EOS}, tok.Encode("hello world", false, true))
	assert.Equal(t, []int{BOS, 22172, 3186, EOS}, tok.Encode("hello world", true, true))
}

// fragments are the building blocks of generated test text: words, white
// space, characters that are or are not pieces, invalid UTF-8 and NUL.
var fragments = []string{
	"the", "The", " ", " ", "  ", "   ", "a", "cat", "sat", "on", "mat",
	"Once", "upon", "time", "Lily", "happy", "ing", "ed", "s", ".", ",", "!",
	"\n", "\n\n", "\t", "\r\n", "\x00", "\x01", "\x7f", "12345", "3.14",
	"é", "ë", "naïve", "café", "☕", "東京", "タワー", "中文", "한국어", "🦙",
	"😀👍🏽", "Ω", "ß", "\u00a0", "\u200b", "\ufeff", "\U0010FFFF",
	"\x80", "\xbf", "\xc3", "\xe2\x98", "\xf0\x9f\xa6", "\xff", "\xfe",
	"\xc0\x80", "\xed\xa0\x80", "\x80\x80\x80\x80\x80", "\xf4\x90\x80\x80",
	"<0x41>", "<s>", "</s>", "<unk>", "▁",
}

// randomText joins up to maxFragments fragments or random bytes.
func randomText(r *rand.Rand, maxFragments int) string {
	var sb strings.Builder
	n := r.IntN(maxFragments + 1)
	for range n {
		switch r.IntN(10) {
		case 0:
			sb.WriteByte(byte(r.IntN(256)))
		case 1:
			sb.WriteRune(rune(r.IntN(0x3000)))
		default:
			sb.WriteString(fragments[r.IntN(len(fragments))])
		}
	}
	return sb.String()
}

func TestEncodeMatchesReference(t *testing.T) {
	for _, ft := range fixtureTokenizers {
		t.Run(ft.file, func(t *testing.T) {
			tok := loadTokenizer(t, ft.file, ft.vocab)
			r := rand.New(rand.NewPCG(1, uint64(ft.vocab)))
			n := 600
			if testing.Short() {
				n = 100
			}
			for i := range n {
				text := randomText(r, 1+i/4)
				bos, eos := r.IntN(2) == 0, r.IntN(2) == 0
				require.Equal(t, referenceEncode(tok, text, bos, eos), tok.Encode(text, bos, eos), "text %q", text)
			}
			long := longPrompt(300)
			require.Equal(t, referenceEncode(tok, long, true, false), tok.Encode(long, true, false))
		})
	}
}

// TestEncodeSyntheticVocab checks what the real vocabularies never exercise:
// equal scores (the leftmost pair must win), NaN, -Inf and scores at run.c's
// -1e10 threshold, duplicate pieces, and the absence of the " " piece.
func TestEncodeSyntheticVocab(t *testing.T) {
	pieces := []string{"<unk>", "<s>", "</s>"}
	scores := []float32{0, 0, 0}
	for b := range 256 {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
		scores = append(scores, 0)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	extra := []struct {
		piece string
		score float32
	}{
		{" ", -1}, {"a", -1}, {"b", -1}, {"c", -1}, {"é", -1},
		{"ab", -2}, {"ba", -2}, {"bc", -2}, {"aa", -2}, {"cc", -2},
		{"abc", -2}, {"aba", -3}, {"bab", -3}, {"aaa", -2}, {"ca", nan},
		{"cb", -1e10}, {"bb", float32(math.Inf(-1))}, {"ac", inf},
		{" a", -5}, {" b", -2}, {"ab", 7}, // duplicate: the first "ab" wins
		{"<s> a", 3}, {"é", 5}, {"aab", -2}, {"éa", -1e9},
		{"x", -1}, {"y", -1}, {"z", -1}, {"xy", negZero}, {"yz", 0}, {"zx", 0},
	}
	for _, e := range extra {
		pieces = append(pieces, e.piece)
		scores = append(scores, e.score)
	}
	withSpace, err := Parse(tokenizerFile(pieces, scores), len(pieces))
	require.NoError(t, err)
	// The same vocabulary without " ": rename it.
	pieces[259] = "\x00\x00"
	noSpace, err := Parse(tokenizerFile(pieces, scores), len(pieces))
	require.NoError(t, err)

	const space, a, b, c, ab, spaceA, spaceB, bosSpaceA = 259, 260, 261, 262, 264, 277, 278, 280
	const z, xy = 286, 287
	assert.Equal(t, []int{BOS, spaceB}, withSpace.Encode("b", true, false), `" b" merges`)
	assert.Equal(t, []int{bosSpaceA}, withSpace.Encode("a", true, false), `BOS merges with " a"`)
	assert.Equal(t, []int{spaceA}, withSpace.Encode("a", false, false))
	assert.Equal(t, []int{ab}, noSpace.Encode("ab", false, false), "first of duplicate pieces")
	assert.Equal(t, []int{BOS, c, a}, noSpace.Encode("ca", true, false), "NaN never merges, no dummy prefix")
	assert.Equal(t, []int{c, b}, noSpace.Encode("cb", false, false), "-1e10 never merges")
	assert.Equal(t, []int{BOS, b, b}, noSpace.Encode("bb", true, false), "-Inf never merges")
	assert.Equal(t, []int{xy, z}, noSpace.Encode("xyz", false, false), "-0 ties with +0: leftmost wins")

	alphabet := []string{"a", "b", "c", " ", "é", "\xc3", "x", "y", "z", "<s>", "q"}
	r := rand.New(rand.NewPCG(2, 3))
	for range 2000 {
		var sb strings.Builder
		for range r.IntN(30) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		text := sb.String()
		for _, tok := range []*Tokenizer{withSpace, noSpace} {
			require.Equal(t, referenceEncode(tok, text, true, true), tok.Encode(text, true, true), "text %q", text)
		}
	}
}

func TestEncodeTinyVocab(t *testing.T) {
	// Fewer than 259 pieces: raw-byte ids would be out of range.
	pieces := []string{"<unk>", "<s>", "</s>", " ", "a", " a"}
	scores := []float32{0, 0, 0, 0, 0, 1}
	tok, err := Parse(tokenizerFile(pieces, scores), len(pieces))
	require.NoError(t, err)
	assert.Equal(t, []int{BOS, 5, 0, 0}, tok.Encode("aé", true, false))
	for _, id := range tok.Encode("\xffé\x00 a", true, true) {
		assert.Less(t, id, tok.VocabSize())
	}
}

func TestEncodeConcurrent(t *testing.T) {
	tok := loadTokenizer(t, "tok512.bin", tok512Vocab)
	text := longPrompt(200)
	want := tok.Encode(text, true, false)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			assert.Equal(t, want, tok.Encode(text, true, false))
		})
	}
	wg.Wait()
}

// longPrompt returns a prompt of words words, mixing ASCII and Unicode.
func longPrompt(words int) string {
	vocab := []string{
		"Once", "upon", "a", "time,", "there", "was", "little", "girl", "named",
		"Lily.", "She", "loved", "to", "play", "outside", "in", "the", "park", "with",
		"her", "dog", "Zoë", "café", "naïve", "☕", "東京タワー", "🦙🦙", "über",
		"résumé", "\n", "  ", "12345",
	}
	var sb strings.Builder
	r := rand.New(rand.NewPCG(7, 7))
	for i := range words {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(vocab[r.IntN(len(vocab))])
	}
	return sb.String()
}

func TestParseErrors(t *testing.T) {
	pieces := []string{"<unk>", "<s>", "</s>", " ", "hello"}
	scores := []float32{0, 0, 0, -1, -2}
	good := tokenizerFile(pieces, scores)
	const n = 5

	// The length field of piece 3 follows the header, three records and
	// piece 3's score.
	length3 := 4 + 3*8 + len("<unk><s></s>") + 4
	negative := tokenizerFile(pieces, scores)
	binary.LittleEndian.PutUint32(negative[length3:], math.MaxUint32-2) // -3
	absurd := tokenizerFile(pieces, scores)
	binary.LittleEndian.PutUint32(absurd[length3:], math.MaxInt32)

	cases := []struct {
		name  string
		data  []byte
		vocab int
		want  []string
	}{
		{"empty", nil, n, []string{"shorter than its 4-byte header"}},
		{"header cut", good[:3], n, []string{"3 bytes, shorter than its 4-byte header"}},
		{"header only", good[:4], n, []string{"has 0 pieces, the model needs 5"}},
		{"record header cut", good[:4+5], n, []string{"piece 0: truncated record header"}},
		{"piece cut", good[:4+8+2], n, []string{"piece 0: length 5 is larger than the 2 bytes left"}},
		{"last piece cut", good[:len(good)-1], n, []string{"piece 4: length 5 is larger than the 4 bytes left"}},
		{"fewer pieces", good, 32000, []string{"has 5 pieces, the model needs 32000"}},
		{"negative length", negative, n, []string{"piece 3: length -3 is negative"}},
		{"absurd length", absurd, n, []string{"piece 3: length 2147483647 is larger than"}},
		{"vocab size zero, trailing bytes", append(good, 1, 2), 0, []string{"piece 5: truncated record header (2 of 8 bytes)"}},
		{"vocab size negative", good, -1, []string{"vocab size -1 is negative"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := Parse(c.data, c.vocab)
			require.Error(t, err)
			assert.Nil(t, tok)
			assert.Contains(t, err.Error(), "tokenizer: ")
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}

	// A smaller vocabulary than the file holds, and trailing data, are fine.
	tok, err := Parse(append(good, 1, 2, 3), 4)
	require.NoError(t, err)
	assert.Equal(t, 4, tok.VocabSize())
	assert.Equal(t, " ", tok.Piece(3))
	// Vocab size 0 takes every record of a file without trailing data.
	tok, err = Parse(good, 0)
	require.NoError(t, err)
	assert.Equal(t, n, tok.VocabSize())
}

func TestLoadErrors(t *testing.T) {
	_, err := Load("testdata/does-not-exist.bin", 32000)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "testdata/does-not-exist.bin")
	assert.ErrorIs(t, err, os.ErrNotExist)

	path := t.TempDir() + "/short.bin"
	require.NoError(t, os.WriteFile(path, []byte{1, 0}, 0o600))
	_, err = Load(path, 512)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tokenizer "+path+": file is 2 bytes")

	// The 512-piece tokenizer is too small for a 32000-token model.
	_, err = Load(fixture(t, "tok512.bin"), llama2Vocab)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has 512 pieces, the model needs 32000")
}

func TestPieceAndDecode(t *testing.T) {
	tok := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	// llama2.c's export wraps the special pieces in newlines.
	assert.Equal(t, "\n<s>\n", tok.Piece(BOS))
	assert.Equal(t, "\n</s>\n", tok.Piece(EOS))
	assert.Equal(t, "<0x0A>", tok.Piece(13))
	assert.Equal(t, " hello", tok.Piece(22172))
	for _, id := range []int{-1, llama2Vocab, math.MaxInt} {
		assert.Equal(t, "", tok.Piece(id), "id %d", id)
		assert.Equal(t, "", tok.Decode(BOS, id), "id %d", id)
	}

	assert.Equal(t, "hello", tok.Decode(BOS, 22172), "space dropped after BOS")
	assert.Equal(t, " hello", tok.Decode(3186, 22172), "space kept elsewhere")
	assert.Equal(t, " hello", tok.Decode(0, 22172))
	assert.Equal(t, "\n", tok.Decode(BOS, 13))
	assert.Equal(t, "\n", tok.Decode(500, 13))
	assert.Equal(t, "\xe2", tok.Decode(0, 0xe2+3), "raw byte")
	assert.Equal(t, "", tok.Decode(BOS, 29871), `" " after BOS`)
	assert.Equal(t, "\n<s>\n", tok.Decode(0, BOS))
}

func TestDecodeRawBytePieces(t *testing.T) {
	pieces := []string{"<unk>", "<s>", "</s>", "<0xe2>", "<0x4A>", " <0x41>", "<0x4>", "<0x4G>", "<0x41>x", "<0X41>"}
	scores := make([]float32, len(pieces))
	tok, err := Parse(tokenizerFile(pieces, scores), len(pieces))
	require.NoError(t, err)
	assert.Equal(t, "\xe2", tok.Decode(0, 3), "lower-case hex")
	assert.Equal(t, "J", tok.Decode(0, 4))
	assert.Equal(t, " <0x41>", tok.Decode(0, 5))
	assert.Equal(t, "A", tok.Decode(BOS, 5), "run.c strips the space, then parses")
	for id := 6; id < len(pieces); id++ {
		assert.Equal(t, pieces[id], tok.Decode(0, id), "not a raw byte: %q", pieces[id])
	}
}

// FuzzParse checks that no input makes the parser panic, and that a
// successful parse has exactly vocabSize pieces.
func FuzzParse(f *testing.F) {
	good := tokenizerFile([]string{"<unk>", "<s>", "</s>", " ", "a", " a"}, []float32{0, 0, 0, -1, -2, 3})
	f.Add(good, 6)
	f.Add(good, 3)
	f.Add(good[:10], 6)
	f.Add([]byte{}, 1)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, 1)
	f.Fuzz(func(t *testing.T, data []byte, vocabSize int) {
		vocabSize = 1 + abs(vocabSize%1000)
		tok, err := Parse(data, vocabSize)
		if err != nil {
			require.Nil(t, tok)
			require.Contains(t, err.Error(), "tokenizer: ")
			return
		}
		require.Equal(t, vocabSize, tok.VocabSize())
		// Whatever the vocabulary, encoding must match run.c's and decoding
		// must not panic.
		text := string(data[min(len(data), 4):])
		ids := tok.Encode(text, true, true)
		if len(text) <= 256 { // the reference is quadratic
			require.Equal(t, referenceEncode(tok, text, true, true), ids)
		}
		for _, id := range ids[1 : len(ids)-1] {
			require.True(t, id >= 0 && id < vocabSize, "id %d out of range", id)
		}
		d := tok.NewTextDecoder()
		var out []byte
		prev := 0
		for _, id := range ids {
			_ = tok.Decode(prev, id)
			out = d.Append(out, prev, id)
			prev = id
		}
		d.Flush(out)
	})
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// FuzzEncodeDecode checks the round trip on the 512-piece tokenizer: valid
// text without control characters comes back as " " + text.
func FuzzEncodeDecode(f *testing.F) {
	tok := loadTokenizer(f, "tok512.bin", tok512Vocab)
	for _, s := range []string{"", "Zoë saw a ☕ cup", "hello\n\tworld", "東京タワー 🦙", "\xff\x00\x80", "  a  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tok.Encode(text, false, false)
		for _, id := range ids {
			require.True(t, id >= 0 && id < tok512Vocab, "id %d out of range", id)
		}
		if len(text) <= 256 { // the reference is quadratic
			require.Equal(t, referenceEncode(tok, text, false, false), ids)
		}
		got := decodeAll(tok, ids, 0)
		require.True(t, utf8.ValidString(got), "invalid UTF-8 output %q", got)
		if !utf8.ValidString(text) || hasControl(text) {
			return
		}
		want := ""
		if text != "" {
			want = " " + text
		}
		require.Equal(t, want, got)
		// After BOS, Decode drops the dummy prefix again.
		require.Equal(t, text, decodeAll(tok, tok.Encode(text, true, false)[1:], BOS))
	})
}

// hasControl reports whether s holds an ASCII control character other than
// white space, which the TextDecoder drops.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf && !isPrintableASCII(s[i]) {
			return true
		}
	}
	return false
}

func BenchmarkEncode(b *testing.B) {
	tok := loadTokenizer(b, "tokenizer.bin", llama2Vocab)
	text := longPrompt(10000)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(text, true, false)
	}
}

func BenchmarkEncodeShort(b *testing.B) {
	tok := loadTokenizer(b, "tokenizer.bin", llama2Vocab)
	text := "Once upon a time, there was a little girl named Lily."
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(text, true, false)
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile(fixture(b, "tokenizer.bin"))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, llama2Vocab); err != nil {
			b.Fatal(err)
		}
	}
}
