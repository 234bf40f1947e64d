package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
)

// Special token ids of the Llama 2 vocabulary, as llama2.c hard-codes them.
const (
	BOS = 1 // beginning of sequence token id
	EOS = 2 // end of sequence token id
)

// byteFallbackOffset is the id of the piece <0x00>: llama2.c encodes a byte
// b that has no piece of its own as the token b+3.
const byteFallbackOffset = 3

// minMergeScore is run.c's initial best_score: a pair merges only when its
// merged piece scores strictly higher.
const minMergeScore = float32(-1e10)

// Tokenizer is a read-only BPE vocabulary, safe for concurrent use.
//
// It reproduces llama2.c's run.c: [Tokenizer.Encode] gives the same ids as
// run.c's encode() and [Tokenizer.Decode] the same text as its decode().
type Tokenizer struct {
	pieces  []string
	scores  []float32
	ids     map[string]int // piece -> lowest id holding it
	spaceID int            // id of the piece " " (dummy prefix), or -1
	// rawByte[id] is the byte a piece of the form <0xXX> stands for, or -1.
	rawByte []int16
}

// LoadTokenizer reads llama2.c's tokenizer.bin; vocabSize comes from the model.
// Pieces beyond vocabSize are ignored.
func LoadTokenizer(path string, vocabSize int) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return ParseTokenizer(data, vocabSize, path)
}

// ParseTokenizer parses the bytes of a tokenizer file; name is used in errors.
//
// The format is llama2.c's: a little-endian uint32 max_token_length, then
// vocabSize records of float32 score, int32 length and length bytes of piece.
// Trailing data after the last record is ignored. If a piece occurs more
// than once, lookups during encoding use its lowest id (run.c's binary search
// leaves the choice unspecified).
func ParseTokenizer(data []byte, vocabSize int, name string) (*Tokenizer, error) {
	t, err := parseTokenizer(data, vocabSize)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", name, err)
	}
	return t, nil
}

// pieceSpan locates one piece inside the file.
type pieceSpan struct{ start, end int }

func parseTokenizer(data []byte, vocabSize int) (*Tokenizer, error) {
	if vocabSize <= 0 {
		return nil, fmt.Errorf("vocab size %d is not positive", vocabSize)
	}
	const headerSize = 4
	if len(data) < headerSize {
		return nil, fmt.Errorf("file is %d bytes, shorter than its %d-byte header", len(data), headerSize)
	}
	// The header's max_token_length only sizes run.c's buffers: unused.
	//
	// Every record takes at least 8 bytes, which bounds the allocation
	// whatever vocabSize claims.
	capacity := min(vocabSize, (len(data)-headerSize)/8)
	scores := make([]float32, 0, capacity)
	spans := make([]pieceSpan, 0, capacity)
	off := headerSize
	for i := range vocabSize {
		if off == len(data) {
			return nil, fmt.Errorf("has %d pieces, the model needs %d", i, vocabSize)
		}
		if len(data)-off < 8 {
			return nil, fmt.Errorf("piece %d: truncated record header (%d of 8 bytes)", i, len(data)-off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		length := int64(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if length < 0 {
			return nil, fmt.Errorf("piece %d: length %d is negative", i, length)
		}
		if left := int64(len(data) - off); length > left {
			return nil, fmt.Errorf("piece %d: length %d is larger than the %d bytes left (truncated file?)", i, length, left)
		}
		scores = append(scores, score)
		spans = append(spans, pieceSpan{off, off + int(length)})
		off += int(length)
	}
	return newTokenizer(string(data[headerSize:off]), headerSize, spans, scores), nil
}

// newTokenizer builds the lookup tables. All pieces are substrings of one
// string (the records' bytes, at file offset base), which saves an allocation
// per piece.
func newTokenizer(records string, base int, spans []pieceSpan, scores []float32) *Tokenizer {
	t := &Tokenizer{
		pieces:  make([]string, len(spans)),
		scores:  scores,
		ids:     make(map[string]int, len(spans)),
		spaceID: -1,
		rawByte: make([]int16, len(spans)),
	}
	for id, s := range spans {
		piece := records[s.start-base : s.end-base]
		t.pieces[id] = piece
		if _, dup := t.ids[piece]; !dup {
			t.ids[piece] = id
		}
		t.rawByte[id] = parseRawByte(piece)
	}
	if id, ok := t.ids[" "]; ok {
		t.spaceID = id
	}
	return t
}

// parseRawByte returns the byte a piece of the form <0xXX> (hex digits of
// either case) stands for, or -1 for any other piece.
func parseRawByte(piece string) int16 {
	if len(piece) != 6 || piece[:3] != "<0x" || piece[5] != '>' {
		return -1
	}
	hi, lo := hexDigit(piece[3]), hexDigit(piece[4])
	if hi < 0 || lo < 0 {
		return -1
	}
	return hi<<4 | lo
}

func hexDigit(c byte) int16 {
	switch {
	case '0' <= c && c <= '9':
		return int16(c - '0')
	case 'a' <= c && c <= 'f':
		return int16(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int16(c-'A') + 10
	}
	return -1
}

// VocabSize returns the number of pieces in the vocabulary.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Piece returns the raw vocabulary piece of id, or "" if id is out of range.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// Decode returns the text of token following prev, as run.c's decode() does:
// after BOS a leading space of the piece is dropped, and a piece of the form
// <0xXX> stands for that single raw byte (which may be part of a multi-byte
// UTF-8 character; see [TextDecoder] for printing). An out-of-range token
// decodes to "".
func (t *Tokenizer) Decode(prev, token int) string {
	text, _ := t.decode(prev, token)
	return text
}

// decode is Decode that also reports whether the text is a raw byte.
func (t *Tokenizer) decode(prev, token int) (text string, rawByte bool) {
	if token < 0 || token >= len(t.pieces) {
		return "", false
	}
	piece := t.pieces[token]
	if prev == BOS && len(piece) > 0 && piece[0] == ' ' {
		// run.c checks for <0xXX> after stripping the space, so " <0x41>"
		// after BOS is the byte 'A'; parse the stripped piece, not the id.
		piece = piece[1:]
		if b := parseRawByte(piece); b >= 0 {
			return byteStrings[b], true
		}
		return piece, false
	}
	if b := t.rawByte[token]; b >= 0 {
		return byteStrings[b], true
	}
	return piece, false
}

// byteStrings holds every single-byte string, so that decoding a raw-byte
// token does not allocate.
var byteStrings = func() (s [256]string) {
	for i := range s {
		s[i] = string([]byte{byte(i)})
	}
	return s
}()

// Encode returns the token ids of text exactly as llama2.c's run.c encode()
// does:
//
//   - BOS first if bos is set;
//   - if text is not empty, the id of the piece " " (SentencePiece's dummy
//     prefix; skipped if the vocabulary has no such piece, where run.c would
//     emit the invalid id -1);
//   - each character as its piece, or as one raw-byte token (byte+3) per
//     byte when the character is not a piece. Characters are grouped byte by
//     byte as run.c does, which also defines the result for invalid UTF-8: a
//     group is a non-continuation byte plus up to three following
//     continuation bytes, and stray continuation bytes group in fours. NUL is
//     an ordinary byte. A raw-byte id beyond the vocabulary (only in
//     vocabularies of fewer than 259 pieces) becomes 0, Llama's <unk>;
//   - then the adjacent pair (BOS included) whose concatenation is the piece
//     with the highest score (above -1e10, never NaN; ties go to the leftmost
//     pair) is merged, repeatedly, until no pair merges;
//   - EOS last if eos is set.
//
// run.c's merge loop is quadratic in the length of the text; Encode gives
// the same merges in O(n log n).
func (t *Tokenizer) Encode(text string, bos, eos bool) []int {
	tokens := make([]int, 0, len(text)+3)
	if bos {
		tokens = append(tokens, BOS)
	}
	if text != "" && t.spaceID >= 0 {
		tokens = append(tokens, t.spaceID)
	}
	tokens = t.appendChars(tokens, text)
	tokens = t.merge(tokens)
	if eos {
		tokens = append(tokens, EOS)
	}
	return tokens
}

// appendChars appends the initial tokens of text, one character (as run.c
// groups bytes) at a time.
func (t *Tokenizer) appendChars(tokens []int, text string) []int {
	n := 0 // bytes in the current group, run.c's str_len
	for i := 0; i < len(text); i++ {
		if !isContinuation(text[i]) {
			n = 0
		}
		n++
		if n < 4 && i+1 < len(text) && isContinuation(text[i+1]) {
			continue
		}
		tokens = t.appendChar(tokens, text[i+1-n:i+1])
		n = 0
	}
	return tokens
}

func isContinuation(b byte) bool { return b&0xC0 == 0x80 }

// appendChar appends the piece of char, or its bytes as raw-byte tokens.
func (t *Tokenizer) appendChar(tokens []int, char string) []int {
	if id, ok := t.ids[char]; ok {
		return append(tokens, id)
	}
	for i := 0; i < len(char); i++ {
		id := int(char[i]) + byteFallbackOffset
		if id >= len(t.pieces) {
			id = 0
		}
		tokens = append(tokens, id)
	}
	return tokens
}

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
	m := merger{t: t, tokens: tokens, nodes: make([]mergeNode, len(tokens))}
	for i := range m.nodes {
		m.nodes[i] = mergeNode{prev: int32(i - 1), next: int32(i + 1)}
	}
	m.nodes[len(tokens)-1].next = -1
	m.heap = make([]mergeCand, 0, len(tokens))
	for i := 0; i+1 < len(tokens); i++ {
		m.add(int32(i))
	}
	m.heapify()
	for len(m.heap) > 0 {
		if c := m.pop(); m.current(c) {
			m.apply(c)
		}
	}
	// Node 0 is never removed (merges remove the right node), so the list
	// starts there; compacting in place is safe because the write index
	// never passes the read index.
	out := tokens[:0]
	for i := int32(0); i >= 0; i = m.nodes[i].next {
		out = append(out, tokens[i])
	}
	return out
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
}

// add appends to the heap's slice, without ordering it, the pair starting at
// node left if its concatenation is a piece that run.c would merge.
func (m *merger) add(left int32) {
	right := m.nodes[left].next
	a, b := m.t.Piece(m.tokens[left]), m.t.Piece(m.tokens[right])
	m.buf = append(append(m.buf[:0], a...), b...)
	id, ok := m.t.ids[string(m.buf)] // a map index by string(bytes) does not allocate
	if !ok {
		return
	}
	score := m.t.scores[id]
	if !(score > minMergeScore) { // also rejects NaN, as run.c's > does
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
