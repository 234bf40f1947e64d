package grammar

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Vocabulary is what a grammar needs of a tokenizer: each token's bytes in
// the text (empty for tokens that are not text: BOS, EOS, control tokens,
// which a grammar never allows). *tokenizer.Tokenizer implements it.
type Vocabulary interface {
	VocabSize() int
	TokenBytes(id int) []byte
}

// Tokens is a vocabulary prepared for grammars: its tokens' bytes in a
// trie, which the matcher walks instead of trying every token. Build it
// once per vocabulary ([NewTokens]); it is immutable and shared by every
// grammar and generation.
type Tokens struct {
	n     int
	bytes [][]byte
	// The trie in preorder: node i reads nodeByte[i] at depth nodeDepth[i]
	// (1 for the first byte), its subtree ends before nodeEnd[i], and the
	// tokens spelled by the path to it are toks[tokStart[i]:tokStart[i+1]].
	nodeByte  []byte
	nodeDepth []int32
	nodeEnd   []int32
	tokStart  []int32
	toks      []int32
	maxDepth  int
}

// NewTokens builds the trie of v's tokens.
func NewTokens(v Vocabulary) *Tokens {
	n := v.VocabSize()
	t := &Tokens{n: n, bytes: make([][]byte, n)}
	var ids []int32
	for id := range n {
		if b := v.TokenBytes(id); len(b) > 0 {
			t.bytes[id] = slices.Clone(b)
			ids = append(ids, int32(id))
		}
	}
	slices.SortStableFunc(ids, func(a, b int32) int { return bytes.Compare(t.bytes[a], t.bytes[b]) })
	var path []int32 // node indices along the previous token
	var prev []byte
	for _, id := range ids {
		b := t.bytes[id]
		lcp := 0
		for lcp < min(len(b), len(prev)) && b[lcp] == prev[lcp] {
			lcp++
		}
		for len(path) > lcp {
			t.nodeEnd[path[len(path)-1]] = int32(len(t.nodeByte))
			path = path[:len(path)-1]
		}
		for d := lcp; d < len(b); d++ {
			path = append(path, int32(len(t.nodeByte)))
			t.nodeByte = append(t.nodeByte, b[d])
			t.nodeDepth = append(t.nodeDepth, int32(d+1))
			t.nodeEnd = append(t.nodeEnd, 0)
			t.tokStart = append(t.tokStart, int32(len(t.toks)))
		}
		t.toks = append(t.toks, id)
		t.maxDepth = max(t.maxDepth, len(b))
		prev = b
	}
	for _, i := range path {
		t.nodeEnd[i] = int32(len(t.nodeByte))
	}
	t.tokStart = append(t.tokStart, int32(len(t.toks)))
	return t
}

// VocabSize is the number of tokens, text or not.
func (t *Tokens) VocabSize() int { return t.n }

// contextKey names a context mask: a vocabulary and a top frame.
type contextKey struct {
	t      *Tokens
	pos, q int32
}

// contextMask is what a top frame alone says about every token: accepted
// (read to its end without leaving the frame's rule, or leaving it exactly
// at its end), uncertain (it leaves the rule with bytes left, so the
// frames below decide), or rejected (neither).
type contextMask struct {
	accept    []uint64
	uncertain []int32
}

// context returns the mask of the top frame (pos, q), computed on first
// use and kept for the grammar's lifetime: it depends on the grammar and
// the vocabulary only, so every generation with the grammar shares it.
func (g *Grammar) context(t *Tokens, pos, q int32) *contextMask {
	k := contextKey{t, pos, q}
	g.mu.Lock()
	c, ok := g.contexts[k]
	g.mu.Unlock()
	if ok {
		return c
	}
	c = g.walk(t, pos, q)
	g.mu.Lock()
	g.contexts[k] = c
	g.mu.Unlock()
	return c
}

// walk classifies every token for the top frame (pos, q) over an unknown
// stack, in one pass over the trie: a subtree is skipped as soon as no
// stack survives its prefix.
func (g *Grammar) walk(t *Tokens, pos, q int32) *contextMask {
	st := newStacks(g)
	c := &contextMask{accept: make([]uint64, (t.n+63)/64)}
	setAt := make([]int32, t.maxDepth+1)
	exited := make([]bool, t.maxDepth+1) // a stack left the rule before this depth
	setAt[0] = st.top(pos, q, opaque)
	for i := 0; i < len(t.nodeByte); {
		d := t.nodeDepth[i]
		s := st.step(setAt[d-1], t.nodeByte[i])
		info := &st.sets[s]
		live := len(info.tops) > 0
		for _, id := range t.toks[t.tokStart[i]:t.tokStart[i+1]] {
			switch {
			case live || info.exit:
				c.accept[id/64] |= 1 << (id % 64)
			case exited[d-1]:
				c.uncertain = append(c.uncertain, id)
			}
		}
		out := exited[d-1] || info.exit
		end := t.nodeEnd[i]
		switch {
		case live:
			setAt[d], exited[d] = s, out
			i++
		case out: // only the unknown stack below could read the rest
			c.uncertain = append(c.uncertain, t.toks[t.tokStart[i+1]:t.tokStart[end]]...)
			i = int(end)
		default:
			i = int(end)
		}
	}
	return c
}

// ErrRejected is the error of Matcher.Accept for a token the grammar does
// not allow.
var ErrRejected = errors.New("grammar: token not allowed")

// Matcher follows one generation through a grammar: which tokens may come
// next ([Matcher.Mask]), and the state after each ([Matcher.Accept]). It is
// used by one goroutine at a time.
type Matcher struct {
	g     *Grammar
	t     *Tokens
	st    *stacks
	cur   int32
	masks map[int32][]uint64 // by set: the allowed tokens, computed once
}

// maxMasks bounds the masks a matcher keeps (16 KiB each at a 128k
// vocabulary); past it they are dropped and recomputed when needed.
const maxMasks = 512

// NewMatcher starts a generation with g over the vocabulary t.
func (g *Grammar) NewMatcher(t *Tokens) *Matcher {
	m := &Matcher{g: g, t: t, st: newStacks(g), masks: map[int32][]uint64{}}
	m.cur = m.st.start()
	return m
}

// Allowed returns the tokens that may come next, as a bitset (token id i
// is bit i%64 of word i/64). It is computed once per state of the
// generation and must not be modified.
func (m *Matcher) Allowed() []uint64 {
	if b, ok := m.masks[m.cur]; ok {
		return b
	}
	allowed := make([]uint64, (m.t.n+63)/64)
	for _, id := range m.st.sets[m.cur].tops {
		f := m.st.frames[id]
		c := m.g.context(m.t, f.pos, f.q)
		for i, w := range c.accept {
			allowed[i] |= w
		}
	}
	for _, id := range m.st.sets[m.cur].tops {
		f := m.st.frames[id]
		for _, u := range m.g.context(m.t, f.pos, f.q).uncertain {
			if allowed[u/64]&(1<<(u%64)) != 0 {
				continue
			}
			if m.st.alive(m.st.run(m.cur, m.t.bytes[u])) {
				allowed[u/64] |= 1 << (u % 64)
			}
		}
	}
	if len(m.masks) >= maxMasks {
		clear(m.masks)
	}
	m.masks[m.cur] = allowed
	return allowed
}

// Mask sets the logits of the tokens that may not come next to -Inf
// (len(logits) is the vocabulary's size). End tokens are among them: the
// caller lets them through when [Matcher.CanEnd].
func (m *Matcher) Mask(logits []float32) {
	allowed := m.Allowed()
	ninf := float32(math.Inf(-1))
	for w, word := range allowed {
		if word == ^uint64(0) {
			continue
		}
		base := w * 64
		block := logits[base:min(base+64, len(logits))]
		if word == 0 {
			for i := range block {
				block[i] = ninf
			}
			continue
		}
		// The forbidden tokens of a mixed word, lowest first.
		for off := ^word; off != 0; off &= off - 1 {
			if i := bits.TrailingZeros64(off); i < len(block) {
				block[i] = ninf
			}
		}
	}
}

// Accept moves past token id. A token the grammar does not allow returns
// ErrRejected and leaves the state as it was.
func (m *Matcher) Accept(id int) error {
	if id < 0 || id >= m.t.n || len(m.t.bytes[id]) == 0 {
		return fmt.Errorf("%w: token %d is not text", ErrRejected, id)
	}
	next := m.st.run(m.cur, m.t.bytes[id])
	if !m.st.alive(next) {
		return fmt.Errorf("%w: token %d (%q)", ErrRejected, id, m.t.bytes[id])
	}
	m.cur = next
	return nil
}

// CanEnd reports whether the output so far is complete: the generation
// may end here.
func (m *Matcher) CanEnd() bool { return m.st.sets[m.cur].accept }

// Done reports whether nothing may follow: the output is complete and only
// ending is allowed.
func (m *Matcher) Done() bool { return len(m.st.sets[m.cur].tops) == 0 }

// Match reports whether g matches text entirely.
func (g *Grammar) Match(text []byte) bool {
	st := newStacks(g)
	s := st.run(st.start(), text)
	return st.sets[s].accept
}

// countAllowed is the number of tokens in a mask.
func countAllowed(mask []uint64) int {
	n := 0
	for _, w := range mask {
		n += bits.OnesCount64(w)
	}
	return n
}
