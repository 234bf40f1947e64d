package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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

// Tokenizer is a read-only vocabulary, safe for concurrent use.
//
// It has three flavours. One read from llama2.c's tokenizer.bin ([Load])
// reproduces run.c: [Tokenizer.Encode] gives the same ids as run.c's
// encode() and [Tokenizer.Decode] the same text as its decode(). One made
// from a SentencePiece vocabulary ([New], from a GGUF file's
// tokenizer.ggml.* keys) tokenizes as llama.cpp's SPM tokenizer does,
// which on plain text gives the same ids as run.c with the same
// vocabulary. One made from a byte-level BPE vocabulary (GPT-2, Llama 3,
// Qwen2.5, ...) tokenizes as llama.cpp's BPE tokenizer does.
type Tokenizer struct {
	pieces  []string
	scores  []float32
	ids     map[string]int // piece -> id (SentencePiece: lowest id of mergeable pieces; BPE: highest id of any)
	spaceID int            // id of the piece " " (dummy prefix), or -1
	// rawByte[id] is the byte a piece of the form <0xXX> stands for, or -1.
	rawByte []int16

	// The rest is set for GGUF vocabularies only (kind != kindLlama2C); a
	// llama2.c tokenizer has BOS 1, EOS 2 and adds BOS.
	kind                           vocabKind
	bos, eos, unk, pad             int
	addBOS, addEOS, addSpacePrefix bool
	types                          []int32
	text                           []string   // what Decode prints for each token (SentencePiece: ▁ as a space; BPE: the bytes; "" for control tokens)
	byteID                         [256]int32 // SentencePiece: the byte-fallback token of each byte, or -1
	special                        []int      // control, unknown and user-defined tokens, longest text first
	userDefined                    []int      // the user-defined tokens of special, in its order
	eog                            []int      // end-of-generation ids, ascending
	bpe                            *bpeModel  // byte-level BPE only
}

// vocabKind is a Tokenizer's flavour.
type vocabKind uint8

const (
	kindLlama2C vocabKind = iota // llama2.c's tokenizer.bin
	kindSPM                      // SentencePiece from GGUF
	kindBPE                      // byte-level BPE from GGUF
)

// parseLlama2C parses llama2.c's tokenizer.bin held in data: a
// little-endian uint32 max_token_length, then vocabSize records of float32
// score, int32 length and length bytes of piece. Trailing data after the
// last record is ignored. If a piece occurs more than once, lookups during
// encoding use its lowest id (run.c's binary search leaves the choice
// unspecified).
// pieceSpan locates one piece inside the file.
type pieceSpan struct{ start, end int }

func parseLlama2C(data []byte, vocabSize int) (*Tokenizer, error) {
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
		bos:     BOS,
		eos:     EOS,
		unk:     -1,
		pad:     -1,
		addBOS:  true,
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
// In a SentencePiece vocabulary spaces appear as "▁" (U+2581).
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id]
}

// TokenBytes returns the bytes token id adds to the text in the middle of
// a stream (not right after BOS): its piece, SentencePiece's "▁" as a
// space, or the one raw byte of a <0xXX> token. Tokens that are not text
// have none: BOS, EOS, control, unknown and unused tokens (llama2.c's
// <unk>, <s> and </s>, ids 0 to 2). An id out of range has none either.
// Grammars (package grammar) read the vocabulary through it.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.pieces) {
		return nil
	}
	if t.kind == kindLlama2C && id <= EOS {
		return nil
	}
	text, _ := t.decode(-1, id)
	return []byte(text)
}

// Decode returns the text of token following prev, as run.c's decode() does:
// after BOS a leading space of the piece is dropped, and a piece of the form
// <0xXX> stands for that single raw byte (which may be part of a multi-byte
// UTF-8 character; see [TextDecoder] for printing). An out-of-range token
// decodes to "".
//
// For a SentencePiece vocabulary it follows llama.cpp: "▁" decodes to a
// space, byte tokens (type byte) to their byte, and control, unknown and
// unused tokens to nothing; run.c's rule of dropping a leading space after
// BOS stays, so both flavours print the same story.
func (t *Tokenizer) Decode(prev, token int) string {
	text, _ := t.decode(prev, token)
	return text
}

// decode is Decode that also reports whether the text is a raw byte.
func (t *Tokenizer) decode(prev, token int) (text string, rawByte bool) {
	if token < 0 || token >= len(t.pieces) {
		return "", false
	}
	switch t.kind {
	case kindSPM:
		return t.decodeSPM(prev, token)
	case kindBPE:
		return t.text[token], false
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
//
// For a SentencePiece vocabulary, Encode is llama.cpp's llama_tokenize with
// parse_special false: spaces become "▁", the text gets a "▁" prefix if the
// vocabulary asks for it, characters merge as above (at any score) but only
// into normal and user-defined pieces, and characters that are no piece
// become byte tokens. Special-token text such as "</s>" stays text; only
// user-defined tokens are split out first, as llama.cpp does. On plain
// text this gives run.c's ids for the same vocabulary. bos and eos add
// nothing if the vocabulary has no such token.
func (t *Tokenizer) Encode(text string, bos, eos bool) []int {
	switch t.kind {
	case kindSPM:
		return t.encodeSPM(text, bos, eos, false)
	case kindBPE:
		return t.encodeBPE(text, bos, eos, false, false)
	}
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

// countRecords returns the number of records of a tokenizer.bin
// that has nothing after its last record.
func countRecords(data []byte) (int, error) {
	const headerSize = 4
	if len(data) < headerSize {
		return 0, fmt.Errorf("file is %d bytes, shorter than its %d-byte header", len(data), headerSize)
	}
	n := 0
	for off := headerSize; off < len(data); n++ {
		if len(data)-off < 8 {
			return 0, fmt.Errorf("piece %d: truncated record header (%d of 8 bytes)", n, len(data)-off)
		}
		length := int64(int32(uint32(data[off+4]) | uint32(data[off+5])<<8 | uint32(data[off+6])<<16 | uint32(data[off+7])<<24))
		off += 8
		if length < 0 || length > int64(len(data)-off) {
			return 0, fmt.Errorf("piece %d: length %d does not fit in the %d bytes left", n, length, len(data)-off)
		}
		off += int(length)
	}
	if n == 0 {
		return 0, errors.New("file has no pieces")
	}
	return n, nil
}
