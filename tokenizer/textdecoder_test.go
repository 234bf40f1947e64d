package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeAll prints ids through a TextDecoder, the first with prev as its
// predecessor.
func decodeAll(tok *Tokenizer, ids []int, prev int) string {
	d := tok.NewTextDecoder()
	var out []byte
	for _, id := range ids {
		out = d.Append(out, prev, id)
		prev = id
	}
	return string(d.Flush(out))
}

// byteTokenizer is a vocabulary with every raw byte (ids 3..258) and a few
// normal pieces after them.
func byteTokenizer(t testing.TB, normal ...string) *Tokenizer {
	pieces := []string{"<unk>", "<s>", "</s>"}
	for b := range 256 {
		pieces = append(pieces, fmt.Sprintf("<0x%02X>", b))
	}
	pieces = append(pieces, normal...)
	tok, err := Parse(tokenizerFile(pieces, make([]float32, len(pieces))), len(pieces))
	require.NoError(t, err)
	return tok
}

func TestTextDecoderExample(t *testing.T) {
	tok := loadTokenizer(t, "tok512.bin", tok512Vocab)
	const text = "Zoë saw a ☕ cup"
	ids := tok.Encode(text, true, false)
	require.Equal(t, BOS, ids[0])

	raw := 0
	for _, id := range ids {
		if _, isByte := tok.decode(0, id); isByte {
			raw++
		}
	}
	require.NotZero(t, raw, "ë and ☕ should need raw-byte tokens in tok512")

	assert.Equal(t, text, decodeAll(tok, ids[1:], BOS))
}

func TestTextDecoderBytes(t *testing.T) {
	const hello, ctl, nl, euro = 259, 260, 261, 262
	tok := byteTokenizer(t, " hello", "\x01", "\n", "€")
	byteID := func(b byte) int { return int(b) + 3 }
	ids := func(bs ...byte) []int {
		out := make([]int, len(bs))
		for i, b := range bs {
			out[i] = byteID(b)
		}
		return out
	}
	cases := []struct {
		name string
		ids  []int
		want string
	}{
		{"3-byte char", ids(0xE2, 0x98, 0x95), "☕"},
		{"4-byte char", ids(0xF0, 0x9F, 0xA6, 0x99), "🦙"},
		{"2-byte chars", ids(0xC3, 0xAB, 'x', 0xC3, 0xA9), "ëxé"},
		{"U+FFFD is valid", ids(0xEF, 0xBF, 0xBD), "\uFFFD"},
		{"stray continuation", ids(0x80, 'a', 0xBF), "a"},
		{"too many continuations", ids(0xC3, 0xAB, 0xAB, 'b'), "ëb"},
		{"invalid leads", ids(0xC0, 0xC1, 0xF5, 0xFF, 'c'), "c"},
		{"cut by ASCII", ids(0xE2, 0x98, 'A'), "A"},
		{"cut by new lead", ids(0xE2, 0xC3, 0xAB), "ë"},
		{"cut by piece", []int{byteID(0xE2), byteID(0x98), hello, byteID(0x95)}, " hello"},
		{"empty piece keeps pending", []int{byteID(0xC3), 1000, byteID(0xAB)}, "ë"},
		{"overlong", ids(0xC0, 0x80, 0xE0, 0x80, 0x80, 'd'), "d"},
		{"surrogate", ids(0xED, 0xA0, 0x80, 'e'), "e"},
		{"beyond U+10FFFF", ids(0xF4, 0x90, 0x80, 0x80, 'f'), "f"},
		{"max rune", ids(0xF4, 0x8F, 0xBF, 0xBF), "\U0010FFFF"},
		{"incomplete at end", ids('g', 0xF0, 0x9F, 0xA6), "g"},
		{"control bytes dropped", ids(0x00, 0x01, 0x1B, 0x7F, 'h'), "h"},
		{"white space kept", ids(' ', '\t', '\n', '\v', '\f', '\r'), " \t\n\v\f\r"},
		{"one-byte pieces", []int{ctl, nl, byteID('i')}, "\ni"},
		{"multi-byte piece", []int{byteID(0xC3), euro, byteID(0xAB)}, "€"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, decodeAll(tok, c.ids, 0))
		})
	}
}

func TestTextDecoderEmitsAsSoonAsComplete(t *testing.T) {
	tok := byteTokenizer(t)
	d := tok.NewTextDecoder()
	var out []byte
	for _, b := range []byte{0xF0, 0x9F, 0xA6} {
		out = d.Append(out, 0, int(b)+3)
		assert.Empty(t, out)
	}
	out = d.Append(out, 0, 0x99+3)
	assert.Equal(t, "🦙", string(out))

	// Flush and Reset drop the pending bytes: the continuation is stray.
	out = d.Append(out[:0], 0, 0xC3+3)
	out = d.Flush(out)
	out = d.Append(out, 0, 0xAB+3)
	assert.Empty(t, out)
	out = d.Append(out, 0, 0xC3+3)
	d.Reset()
	out = d.Append(out, 0, 0xAB+3)
	assert.Empty(t, out)
}

func TestTextDecoderBOS(t *testing.T) {
	tok := loadTokenizer(t, "tokenizer.bin", llama2Vocab)
	ids := tok.Encode("hello world", true, false)
	assert.Equal(t, "hello world", decodeAll(tok, ids[1:], BOS))
	assert.Equal(t, " hello world", decodeAll(tok, ids[1:], 0))
}

func TestTextDecoderAllocs(t *testing.T) {
	tok := loadTokenizer(t, "tok512.bin", tok512Vocab)
	ids := tok.Encode(longPrompt(300), false, false)
	d := tok.NewTextDecoder()
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(10, func() {
		prev := BOS
		for _, id := range ids {
			buf = d.Append(buf[:0], prev, id)
			prev = id
		}
		buf = d.Flush(buf[:0])
		d.Reset()
	})
	assert.Zero(t, allocs)
}

// printableText generates valid UTF-8 without ASCII control characters
// other than white space: text that survives the round trip unchanged.
func printableText(r *rand.Rand, maxParts int) string {
	var sb strings.Builder
	for range r.IntN(maxParts + 1) {
		switch r.IntN(6) {
		case 0: // any scalar value that is not an ASCII control
			c := rune(r.IntN(unicode.MaxRune + 1))
			if utf8.ValidRune(c) && (c >= utf8.RuneSelf || isPrintableASCII(byte(c))) {
				sb.WriteRune(c)
			}
		case 1:
			sb.WriteRune(rune(0x20 + r.IntN(0x5F)))
		default:
			f := fragments[r.IntN(len(fragments))]
			if utf8.ValidString(f) && !hasControl(f) {
				sb.WriteString(f)
			}
		}
	}
	return sb.String()
}

func TestRoundTrip(t *testing.T) {
	for _, ft := range fixtureTokenizers {
		t.Run(ft.file, func(t *testing.T) {
			tok := loadTokenizer(t, ft.file, ft.vocab)
			r := rand.New(rand.NewPCG(3, uint64(ft.vocab)))
			for i := range 1000 {
				s := printableText(r, 1+i/10)
				want := ""
				if s != "" {
					want = " " + s
				}
				require.Equal(t, want, decodeAll(tok, tok.Encode(s, false, false), 0), "text %q", s)
				// After BOS, Decode drops the dummy prefix again.
				ids := tok.Encode(s, true, false)
				require.Equal(t, s, decodeAll(tok, ids[1:], BOS), "text %q after BOS", s)
			}
			s := longPrompt(2000)
			assert.Equal(t, " "+s, decodeAll(tok, tok.Encode(s, false, false), 0))
		})
	}
}

func BenchmarkTextDecoder(b *testing.B) {
	tok := loadTokenizer(b, "tok512.bin", tok512Vocab)
	ids := tok.Encode(longPrompt(10000), false, false)
	d := tok.NewTextDecoder()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		prev := BOS
		for _, id := range ids {
			buf = d.Append(buf[:0], prev, id)
			prev = id
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ids)), "ns/token")
}
