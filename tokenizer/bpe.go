package tokenizer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// Byte-level BPE (GGUF's tokenizer.ggml.model "gpt2": GPT-2, Llama 3,
// Qwen2.5, SmolLM2, ...), as llama.cpp's llm_tokenizer_bpe tokenizes: text
// is split into words by the vocabulary's pre-tokenizer (pretokenize.go);
// each word starts as one token per byte and its adjacent pairs merge,
// the pair of lowest merge rank first (leftmost among equals), until no
// pair has a rank.
//
// Pieces are stored in GPT-2's byte alphabet (unicode.go); the encoder
// works on the text's bytes and token ids, never on strings: a word's
// bytes become their byte tokens through a table, a merge is one lookup of
// the pair of ids in pairTable, and only Llama 3's whole-word lookup
// (ignore_merges) spells the word in the alphabet, in a reused buffer.

// bpeModel is what a byte-level BPE vocabulary adds to a Tokenizer.
type bpeModel struct {
	pre       preTokenizer
	vocab     *strTable // piece -> id
	pairs     pairTable
	byteToken [256]int32 // the token of each byte
}

// newBPE builds the tokenizer of a byte-level BPE vocabulary; t has its
// pieces, types and special ids.
func newBPE(t *Tokenizer, v Vocab) error {
	pre, err := lookupPre(v.Pre)
	if err != nil {
		return err
	}
	m := &bpeModel{pre: pre, vocab: newStrTable(v.Tokens)}
	t.bpe = m
	var buf [utf8.UTFMax]byte
	for b := range 256 {
		piece := utf8.AppendRune(buf[:0], byteRunes[b])
		id := m.vocab.find(string(piece))
		if id < 0 {
			return fmt.Errorf("Tokens has no token %q for the byte 0x%02X: byte-level BPE needs all 256", piece, b)
		}
		m.byteToken[b] = int32(id)
	}
	if err := m.pairs.build(m.vocab, &m.byteToken, v.Merges); err != nil {
		return err
	}
	t.text = bpeTexts(v.Tokens, t.types)
	return nil
}

// bpeTexts returns what each token decodes to: a normal token's bytes
// (its piece read back from GPT-2's alphabet), a user-defined token's
// piece as it is, nothing for the others (Detokenize can print control
// tokens' pieces). All texts are slices of
// one string, one allocation for the whole vocabulary. A normal piece
// with a character outside the alphabet (no real vocabulary has one) is
// printed as it is; llama.cpp prints "[UNK_BYTE_0x..]" for it.
func bpeTexts(pieces []string, types []int32) []string {
	size := 0
	for _, p := range pieces {
		size += len(p)
	}
	buf := make([]byte, 0, size)
	spans := make([]int32, len(pieces)+1)
	for id, p := range pieces {
		switch types[id] {
		case TokenNormal:
			var ok bool
			n := len(buf)
			if buf, ok = unmapBytes(buf, p); !ok {
				buf = append(buf[:n], p...)
			}
		case TokenUserDefined:
			buf = append(buf, p...)
		}
		spans[id+1] = int32(len(buf))
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is not written again
	texts := make([]string, len(pieces))
	for id := range texts {
		texts[id] = all[spans[id]:spans[id+1]]
	}
	return texts
}

// pairTable maps a pair of token ids to its merge: rank and merged token.
// It is an open-addressing hash table with linear probing keyed by the two
// ids: a merge costs no string hashing or allocation, a lookup a few
// multiplies and usually one cache line.
type pairTable struct {
	slots []pairSlot
	shift uint
}

type pairSlot struct {
	left, right int32
	rank        int32 // rank + 1; 0 marks an empty slot
	merged      int32
}

// noRank is the rank of a pair that does not merge.
const noRank = int32(1<<31 - 1)

func (p *pairTable) slot(left, right int32) uint64 {
	// Mix both ids into the high bits the slot index takes: multiplying
	// the packed pair (left<<32 | right) by one constant clustered Llama
	// 3's pairs into long probe runs, and BenchmarkEncodeLlama3 took 87 ms
	// instead of 26.
	key := uint64(uint32(left))*0x9E3779B97F4A7C15 ^ uint64(uint32(right))*0xC2B2AE3D27D4EB4F
	return (key ^ key>>29) * 0x94D049BB133111EB >> p.shift
}

// build fills the table from merges, "left right" by rank. A merge whose
// pieces or result is not a token is an error, as Hugging Face's tokenizers
// refuse it; of two merges of the same pair the first counts, as in
// llama.cpp.
//
// Resolving the merges' pieces to ids is most of a vocabulary's load
// (840k lookups for Llama 3), so it runs on all CPUs; the table is then
// filled in rank order.
func (p *pairTable) build(vocab *strTable, byteToken *[256]int32, merges []string) error {
	size, bits := 2, uint(1) // at least one slot stays empty
	for size < len(merges)+len(merges)/3+1 {
		size *= 2
		bits++
	}
	p.slots = make([]pairSlot, size)
	p.shift = 64 - bits
	resolved := make([]pairSlot, len(merges))
	workers := min(runtime.GOMAXPROCS(0), 1+len(merges)/50000)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(merges)/workers, (w+1)*len(merges)/workers
		wg.Go(func() { errs[w] = resolveMerges(vocab, byteToken, merges[lo:hi], resolved[lo:hi], lo) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for rank, r := range resolved {
		p.insert(r.left, r.right, int32(rank), r.merged)
	}
	return nil
}

// resolveMerges looks up the ids of merges, of which the first has rank
// first, into out. A third of Llama 3's merge pieces are one character,
// a byte's token: those come from byteToken, without hashing.
func resolveMerges(vocab *strTable, byteToken *[256]int32, merges []string, out []pairSlot, first int) error {
	find := func(piece string) int {
		if len(piece) <= 2 {
			if r, n := utf8.DecodeRuneInString(piece); n == len(piece) && int(r) < len(runeByte) && runeByte[r] >= 0 {
				return int(byteToken[runeByte[r]])
			}
		}
		return vocab.find(piece)
	}
	guess := -1 // the merged token usually follows the previous one
	for i, merge := range merges {
		// llama.cpp splits at the first space after the first byte.
		sp := -1
		if len(merge) > 1 {
			sp = strings.IndexByte(merge[1:], ' ')
		}
		if sp < 0 {
			return fmt.Errorf("Merges[%d] %q is not two pieces separated by a space", first+i, merge)
		}
		left, right := merge[:sp+1], merge[sp+2:]
		l, r := find(left), find(right)
		if l < 0 || r < 0 {
			missing := left
			if l >= 0 {
				missing = right
			}
			return fmt.Errorf("Merges[%d] %q: %q is not a token", first+i, merge, missing)
		}
		guess++
		if !vocab.isConcat(guess, left, right) {
			guess = vocab.findConcat(left, right)
			if guess < 0 {
				return fmt.Errorf("Merges[%d] %q: the merged %q is not a token", first+i, merge, left+right)
			}
		}
		out[i] = pairSlot{left: int32(l), right: int32(r), merged: int32(guess)}
	}
	return nil
}

func (p *pairTable) insert(left, right, rank, merged int32) {
	mask := uint64(len(p.slots) - 1)
	for i := p.slot(left, right); ; i = (i + 1) & mask {
		s := &p.slots[i]
		if s.rank == 0 {
			*s = pairSlot{left: left, right: right, rank: rank + 1, merged: merged}
			return
		}
		if s.left == left && s.right == right {
			return
		}
	}
}

// lookup returns the merge of the pair, or noRank.
func (p *pairTable) lookup(left, right int32) (rank, merged int32) {
	mask := uint64(len(p.slots) - 1)
	for i := p.slot(left, right); ; i = (i + 1) & mask {
		s := &p.slots[i]
		if s.rank == 0 {
			return noRank, -1
		}
		if s.left == left && s.right == right {
			return s.rank - 1, s.merged
		}
	}
}

// bpeScratch holds one Encode call's buffers, reused from word to word.
type bpeScratch struct {
	ends  []int
	syms  []int32   // the word's tokens
	pairs []bpePair // the merge of each symbol with the next
	buf   []byte
	big   bigMerger
}

type bpePair struct{ rank, merged int32 }

// encodeBPE is llama.cpp's llama_tokenize for byte-level BPE vocabularies.
// unmark removes ProtectSpecial's marks from the text between special tokens.
func (t *Tokenizer) encodeBPE(text string, bos, eos, parseSpecial, unmark bool) []int {
	out := make([]int, 0, len(text)/3+2)
	if bos && t.bos >= 0 {
		out = append(out, t.bos)
	}
	specials := t.userDefined
	if parseSpecial {
		specials = t.special
	}
	var sc bpeScratch
	for _, f := range t.partition(text, specials) {
		if f.id >= 0 {
			out = append(out, f.id)
			continue
		}
		s := f.text
		if unmark {
			s = strings.ReplaceAll(s, specialMark, "")
		}
		out = t.encodeBPEText(out, s, &sc)
	}
	if eos && t.eos >= 0 {
		out = append(out, t.eos)
	}
	return out
}

// encodeBPEText appends the tokens of text, which has no special tokens.
func (t *Tokenizer) encodeBPEText(out []int, text string, sc *bpeScratch) []int {
	s := scanner{text: text, classes: classTable()}
	sc.ends = t.bpe.pre.split(&s, sc.ends[:0])
	start := 0
	for _, end := range sc.ends {
		out = t.encodeWord(out, text[start:end], sc)
		start = end
	}
	return out
}

// smallWord is the longest word merged by rescanning its pairs' ranks for
// the lowest after each merge (quadratic, but over a few int32s); longer
// words (a line of CJK, a run of spaces) use bigMerger's heap, whose cost
// stays n log n. On BenchmarkEncodeLlama3 the heap for every word took
// 58-61 CPU ms where rescanning short words took 33-46; 8, 32 and 128 as
// the bound measured the same within the noise (26-34 CPU ms, 3 alternated
// runs each).
const smallWord = 32

// encodeWord appends the tokens of one word.
//
// Llama 3 emits a word that is a vocabulary entry whole, without merging
// (ignore_merges). Looking the word up first is faster than merging it and
// looking up only when the merges leave more than one token: on
// BenchmarkEncodeLlama3, 24-29 against 33-46 CPU ms (3 alternated runs).
func (t *Tokenizer) encodeWord(out []int, word string, sc *bpeScratch) []int {
	m := t.bpe
	if len(word) == 1 {
		return append(out, int(m.byteToken[word[0]]))
	}
	if m.pre.ignoreMerges {
		sc.buf = mapBytes(sc.buf[:0], word)
		if id := m.vocab.find(unsafe.String(unsafe.SliceData(sc.buf), len(sc.buf))); id >= 0 {
			return append(out, id)
		}
	}
	syms := sc.syms[:0]
	for i := 0; i < len(word); i++ {
		syms = append(syms, m.byteToken[word[i]])
	}
	if len(word) > smallWord {
		syms = sc.big.merge(syms, &m.pairs)
	} else {
		syms = sc.mergeSmall(syms, &m.pairs)
	}
	sc.syms = syms
	for _, id := range syms {
		out = append(out, int(id))
	}
	return out
}

// mergeSmall merges the symbols of a short word by rescanning the pairs'
// ranks after each merge.
func (sc *bpeScratch) mergeSmall(syms []int32, pairs *pairTable) []int32 {
	ps := sc.pairs[:0]
	for i := 0; i+1 < len(syms); i++ {
		r, merged := pairs.lookup(syms[i], syms[i+1])
		ps = append(ps, bpePair{r, merged})
	}
	for {
		best, rank := -1, noRank
		for i, p := range ps {
			if p.rank < rank {
				best, rank = i, p.rank
			}
		}
		if best < 0 {
			break
		}
		syms[best] = ps[best].merged
		syms = append(syms[:best+1], syms[best+2:]...)
		ps = append(ps[:best], ps[best+1:]...)
		if best > 0 {
			r, merged := pairs.lookup(syms[best-1], syms[best])
			ps[best-1] = bpePair{r, merged}
		}
		if best < len(ps) {
			r, merged := pairs.lookup(syms[best], syms[best+1])
			ps[best] = bpePair{r, merged}
		}
	}
	sc.pairs = ps
	return syms
}

// bigMerger merges a long word in O(n log n): the symbols in a linked
// list, every pair that merges in a min-heap ordered by (rank, position).
// A merge changes only the pairs beside it, which are pushed anew; entries
// whose pair changed since they were pushed are skipped when popped (a
// node's version counts its changes).
type bigMerger struct {
	next, prev []int32
	version    []uint32
	heap       []bigCand
}

type bigCand struct {
	rank, left, merged int32
	version            uint32
}

func (c bigCand) less(d bigCand) bool {
	return c.rank < d.rank || c.rank == d.rank && c.left < d.left
}

func (b *bigMerger) merge(syms []int32, pairs *pairTable) []int32 {
	n := len(syms)
	b.next, b.prev, b.version = resize(b.next, n), resize(b.prev, n), resize(b.version, n)
	for i := range n {
		b.next[i], b.prev[i], b.version[i] = int32(i+1), int32(i-1), 0
	}
	b.next[n-1] = -1
	b.heap = b.heap[:0]
	push := func(left int32) {
		right := b.next[left]
		if right < 0 {
			return
		}
		r, merged := pairs.lookup(syms[left], syms[right])
		if r == noRank {
			return
		}
		b.heap = append(b.heap, bigCand{r, left, merged, b.version[left]})
		b.up(len(b.heap) - 1)
	}
	for i := range int32(n - 1) {
		push(i)
	}
	for len(b.heap) > 0 {
		c := b.pop()
		if b.version[c.left] != c.version {
			continue // the pair changed since
		}
		left, right := c.left, b.next[c.left]
		syms[left] = c.merged
		b.version[left]++
		b.version[right]++ // removed
		b.next[left] = b.next[right]
		if nr := b.next[left]; nr >= 0 {
			b.prev[nr] = left
		}
		push(left)
		if p := b.prev[left]; p >= 0 {
			b.version[p]++ // its right neighbour changed
			push(p)
		}
	}
	// Compact in list order; node 0 is never removed (merges remove the
	// right node), and the write index never passes the read index.
	out := syms[:0]
	for i := int32(0); i >= 0; i = b.next[i] {
		out = append(out, syms[i])
	}
	return out
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

func (b *bigMerger) up(i int) {
	h := b.heap
	c := h[i]
	for i > 0 {
		parent := (i - 1) / 2
		if !c.less(h[parent]) {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = c
}

func (b *bigMerger) pop() bigCand {
	h := b.heap
	top := h[0]
	last := len(h) - 1
	c := h[last]
	b.heap = h[:last]
	h = b.heap
	i := 0
	for {
		child := 2*i + 1
		if child >= len(h) {
			break
		}
		if r := child + 1; r < len(h) && h[r].less(h[child]) {
			child = r
		}
		if !h[child].less(c) {
			break
		}
		h[i] = h[child]
		i = child
	}
	if last > 0 {
		h[i] = c
	}
	return top
}
