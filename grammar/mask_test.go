package grammar

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/llama2-go/llama2/internal/testfixture"
	"github.com/llama2-go/llama2/tokenizer"
	"github.com/stretchr/testify/require"
)

// sliceVocab is a vocabulary of given byte strings.
type sliceVocab [][]byte

func (v sliceVocab) VocabSize() int           { return len(v) }
func (v sliceVocab) TokenBytes(id int) []byte { return v[id] }

func testVocab(pieces ...string) sliceVocab {
	v := make(sliceVocab, len(pieces))
	for i, p := range pieces {
		v[i] = []byte(p)
	}
	return v
}

// syntheticVocab is n byte-level tokens: the 256 bytes, then random
// strings over text and JSON characters (a BPE vocabulary's shape), with
// one empty (control) token.
func syntheticVocab(n int, seed uint64) sliceVocab {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make(sliceVocab, 0, n)
	v = append(v, nil) // a control token
	for b := range 256 {
		v = append(v, []byte{byte(b)})
	}
	alphabet := []string{"a", "e", "t", " ", "n", "s", "\"", ":", ",", "{", "}", "[", "]", "0", "1", "9", ".", "-", "\\", "\n", "é", "true", "null", "ing", " the", "_", "x"}
	for len(v) < n {
		var b []byte
		for range 1 + r.IntN(6) {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		v = append(v, b)
	}
	return v
}

func allowedIDs(m *Matcher) []int {
	var ids []int
	for w, word := range m.Allowed() {
		for i := range 64 {
			if word&(1<<i) != 0 {
				ids = append(ids, w*64+i)
			}
		}
	}
	return ids
}

// nthAllowed is the k-th token of a mask.
func nthAllowed(mask []uint64, k int) int {
	for w, word := range mask {
		if c := bits.OnesCount64(word); k >= c {
			k -= c
			continue
		}
		for i := range 64 {
			if word&(1<<i) != 0 {
				if k == 0 {
					return w*64 + i
				}
				k--
			}
		}
	}
	return -1
}

// bruteAllowed tries every token from the matcher's state.
func bruteAllowed(m *Matcher) []int {
	var ids []int
	for id, b := range m.t.bytes {
		if len(b) > 0 && m.st.alive(m.st.run(m.cur, b)) {
			ids = append(ids, id)
		}
	}
	return ids
}

// walkGrammar samples tokens under the mask with r until the grammar is
// done or steps run out, checking the mask against trying every token at
// every step. It returns the text and whether the grammar may end there.
func walkGrammar(t *testing.T, g *Grammar, toks *Tokens, r *rand.Rand, steps int, check bool) ([]byte, bool) {
	m := g.NewMatcher(toks)
	var out []byte
	for range steps {
		if check {
			require.Equal(t, bruteAllowed(m), allowedIDs(m), "after %q", out)
		}
		allowed := m.Allowed()
		n := countAllowed(allowed)
		if n == 0 || (m.CanEnd() && r.IntN(8) == 0) {
			break
		}
		id := nthAllowed(allowed, r.IntN(n))
		require.NoError(t, m.Accept(id))
		out = append(out, toks.bytes[id]...)
	}
	return out, m.CanEnd()
}

func TestMaskMatchesBruteForce(t *testing.T) {
	toks := NewTokens(syntheticVocab(3000, 1))
	for _, src := range []string{
		`root ::= "(" root ")" root | ""`,
		"root ::= \"{\" ws (pair (\",\" ws pair)*)? \"}\"\npair ::= [a-z]+ \":\" ws (\"true\" | root)\nws ::= [ \\n]*",
		`root ::= [^"]* "\"" [0-9]{1,3} ([a-z] | "é")+`,
		JSONGrammar,
	} {
		g, err := Parse(src)
		require.NoError(t, err)
		r := rand.New(rand.NewPCG(7, 7))
		for range 30 {
			walkGrammar(t, g, toks, r, 40, true)
		}
	}
}

func TestMatcherAcceptRejects(t *testing.T) {
	g, err := Parse(`root ::= "ab"`)
	require.NoError(t, err)
	toks := NewTokens(testVocab("", "a", "b", "ab", "abc", "ba"))
	m := g.NewMatcher(toks)
	require.Equal(t, []int{1, 3}, allowedIDs(m))
	require.ErrorIs(t, m.Accept(5), ErrRejected)
	require.ErrorIs(t, m.Accept(0), ErrRejected, "an empty token is never text")
	require.ErrorIs(t, m.Accept(99), ErrRejected)
	require.False(t, m.CanEnd())
	require.NoError(t, m.Accept(1))
	require.Equal(t, []int{2}, allowedIDs(m))
	require.NoError(t, m.Accept(2))
	require.True(t, m.CanEnd())
	require.True(t, m.Done())
	require.Empty(t, allowedIDs(m))
	logits := []float32{1, 2, 3, 4, 5, 6}
	m.Mask(logits)
	for _, l := range logits {
		require.True(t, math.IsInf(float64(l), -1))
	}
}

func TestMaskSetsLogits(t *testing.T) {
	g, err := Parse(`root ::= [a-b]+`)
	require.NoError(t, err)
	v := syntheticVocab(200, 3)
	toks := NewTokens(v)
	m := g.NewMatcher(toks)
	logits := make([]float32, len(v))
	m.Mask(logits)
	for id, l := range logits {
		ok := len(v[id]) > 0
		for _, c := range v[id] {
			ok = ok && (c == 'a' || c == 'b')
		}
		require.Equal(t, ok, l == 0, "token %d %q", id, v[id])
	}
}

func fixture(t testing.TB, name string) string { return testfixture.Path(t, name) }

// TestRealVocabularies walks JSON through the vocabularies that load today:
// llama2.c's 32000 pieces and SentencePiece GGUF vocabularies.
func TestRealVocabularies(t *testing.T) {
	g, err := Parse(JSONGrammar)
	require.NoError(t, err)
	for _, name := range []string{"tokenizer.bin", "tok512.bin", "gguf/ggml-vocab-llama-spm.gguf"} {
		tok, err := tokenizer.Load(fixture(t, name), 0)
		require.NoError(t, err)
		toks := NewTokens(tok)
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 20 {
			out, _ := walkGrammar(t, g, toks, r, 60, i < 3)
			require.True(t, slices.Contains([]byte("{[\"-0123456789tfn "), out[0]) || len(out) == 0, "%s: %q", name, out)
		}
	}
}
