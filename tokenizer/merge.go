package tokenizer

import "math"

// merge applies run.c's BPE merges to tokens in place and returns the
// shortened slice.
//
// run.c rescans all adjacent pairs for the best merge after every merge. We
// keep the tokens in a doubly linked list and every mergeable pair in a
// min-heap keyed by (score descending, left position ascending). A merge
// changes only the pairs next to it: they are pushed anew, and entries for
// pairs that changed stay in the heap until popped, when a version stamp
// exposes them as stale. Node indices never change and the list keeps their
// order, so "leftmost" is "lowest left index", and every pop of a current
// entry yields exactly the pair run.c's scan would pick.
func (t *Tokenizer) merge(tokens []int) []int {
	if len(tokens) < 2 {
		return tokens
	}
	m := merger{t: t, tokens: tokens}
	m.run()
	// Node 0 is never removed (merges remove the right node), so the list
	// starts there; compacting in place is safe because the write index
	// never passes the read index.
	out := tokens[:0]
	for i := int32(0); i >= 0; i = m.nodes[i].next {
		out = append(out, tokens[i])
	}
	return out
}

// mergeText is merge for SentencePiece vocabularies, as llama.cpp's
// llm_tokenizer_spm merges: tokens[i] is the piece of the character of text
// starting at byte starts[i], or -1 for a character that is no piece; pairs
// merge when their text (not their pieces' text: a -1 character has none)
// is a piece, whatever its score, highest score first, then leftmost, as in
// run.c. It appends the resulting ids to out, each character left at -1 as
// its byte fallback.
func (t *Tokenizer) mergeText(out, tokens []int, starts []int32, text string) []int {
	m := merger{t: t, tokens: tokens, starts: starts, text: text}
	if len(tokens) >= 2 {
		m.run()
	}
	for i := int32(0); i >= 0; {
		next := int32(-1)
		if m.nodes != nil {
			next = m.nodes[i].next
		} else if int(i)+1 < len(tokens) {
			next = i + 1
		}
		if id := tokens[i]; id >= 0 {
			out = append(out, id)
		} else {
			out = t.appendFallback(out, text[starts[i]:m.end(next)])
		}
		i = next
	}
	return out
}

// run links the tokens and applies every merge.
func (m *merger) run() {
	m.nodes = make([]mergeNode, len(m.tokens))
	for i := range m.nodes {
		m.nodes[i] = mergeNode{prev: int32(i - 1), next: int32(i + 1)}
	}
	m.nodes[len(m.tokens)-1].next = -1
	m.heap = make([]mergeCand, 0, len(m.tokens))
	for i := 0; i+1 < len(m.tokens); i++ {
		m.add(int32(i))
	}
	m.heapify()
	for len(m.heap) > 0 {
		if c := m.pop(); m.current(c) {
			m.apply(c)
		}
	}
}

// mergeNode links a token into the list. Its version identifies the pair
// the node starts: it changes whenever the node or its right neighbour
// changes, and when the node is removed.
type mergeNode struct {
	prev, next int32
	version    uint32
}

// mergeCand is a candidate merge of the node at position left with its
// right neighbour into the piece id, current while that node's version is
// unchanged. key orders the heap; the low 32 bits are left.
type mergeCand struct {
	key     uint64
	id      int32
	version uint32
}

// mergeKey orders candidates by score, highest first, then by position,
// leftmost first: smaller keys merge first. score is not NaN.
func mergeKey(score float32, left int32) uint64 {
	if score == 0 {
		score = 0 // -0 ties with +0, as in run.c's float comparison
	}
	// Map the float's bits to an unsigned integer of the same order.
	bits := math.Float32bits(score)
	if bits&(1<<31) != 0 {
		bits = ^bits
	} else {
		bits |= 1 << 31
	}
	return uint64(^bits)<<32 | uint64(uint32(left))
}

type merger struct {
	t      *Tokenizer
	tokens []int
	nodes  []mergeNode
	heap   []mergeCand
	buf    []byte // scratch for concatenating two pieces
	// For mergeText: the text and the byte offset where each node starts.
	// A node's text runs to the start of the next node in the list, so a
	// pair's text is one substring and never needs concatenating.
	starts []int32
	text   string
}

// end returns the byte offset where the text of the node before next ends.
func (m *merger) end(next int32) int {
	if next < 0 {
		return len(m.text)
	}
	return int(m.starts[next])
}

// add appends to the heap's slice, without ordering it, the pair starting at
// node left if its concatenation is a piece that run.c (or, for mergeText,
// llama.cpp) would merge.
func (m *merger) add(left int32) {
	right := m.nodes[left].next
	var id int
	var ok bool
	if m.starts != nil {
		id, ok = m.t.ids[m.text[m.starts[left]:m.end(m.nodes[right].next)]]
	} else {
		a, b := m.t.Piece(m.tokens[left]), m.t.Piece(m.tokens[right])
		m.buf = append(append(m.buf[:0], a...), b...)
		id, ok = m.t.ids[string(m.buf)] // a map index by string(bytes) does not allocate
	}
	if !ok {
		return
	}
	score := m.t.scores[id]
	if score != score || (m.starts == nil && !(score > minMergeScore)) {
		// run.c merges only above -1e10, llama.cpp at any score; NaN
		// never merges (run.c's > rejects it; SentencePiece vocabularies
		// with NaN scores are refused by New).
		return
	}
	m.heap = append(m.heap, mergeCand{key: mergeKey(score, left), id: int32(id), version: m.nodes[left].version})
}

// push adds the pair starting at node left to the heap.
func (m *merger) push(left int32) {
	n := len(m.heap)
	m.add(left)
	if len(m.heap) > n {
		m.up(n)
	}
}

// current reports whether c still describes an existing, unchanged pair.
func (m *merger) current(c mergeCand) bool {
	return m.nodes[int32(c.key)].version == c.version
}

// apply merges the pair of c into its left node and queues the pairs that
// the merge changes.
func (m *merger) apply(c mergeCand) {
	li := int32(c.key)
	left := &m.nodes[li]
	right := &m.nodes[left.next]
	m.tokens[li] = int(c.id)
	left.version++
	right.version++ // removed: its pair is stale
	left.next = right.next
	if left.next >= 0 {
		m.nodes[left.next].prev = li
		m.push(li)
	}
	if left.prev >= 0 {
		m.nodes[left.prev].version++ // its right neighbour changed
		m.push(left.prev)
	}
}

func (m *merger) heapify() {
	for i := len(m.heap)/2 - 1; i >= 0; i-- {
		m.down(i)
	}
}

func (m *merger) pop() mergeCand {
	h := m.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	m.heap = h[:last]
	if last > 0 {
		m.down(0)
	}
	return top
}

func (m *merger) up(i int) {
	h := m.heap
	c := h[i]
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].key <= c.key {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = c
}

func (m *merger) down(i int) {
	h := m.heap
	c := h[i]
	for {
		child := 2*i + 1
		if child >= len(h) {
			break
		}
		if r := child + 1; r < len(h) && h[r].key < h[child].key {
			child = r
		}
		if c.key <= h[child].key {
			break
		}
		h[i] = h[child]
		i = child
	}
	h[i] = c
}
