package tokenizer

import "unicode/utf8"

// TextDecoder turns a stream of tokens into printable UTF-8 text.
//
// run.c prints each decoded piece unless it is a single byte that is neither
// printable nor white space, so a character that the tokenizer spelled as
// raw-byte tokens (<0xE2> <0x98> <0x95> for ☕) vanishes. A TextDecoder
// instead buffers such bytes and emits each character once its last byte
// arrives. Byte-level BPE tokens are bytes too, any number of them, which
// may cut a character anywhere: every byte of theirs is buffered so. Bytes that cannot become part of a valid UTF-8 character are
// dropped, as are ASCII control characters other than white space.
//
// A TextDecoder holds the state of one stream and is not safe for concurrent
// use; the zero value is not usable, create one with
// [Tokenizer.NewTextDecoder].
type TextDecoder struct {
	t       *Tokenizer
	pending [utf8.UTFMax]byte // bytes of an incomplete character
	n       int               // number of pending bytes
}

// NewTextDecoder returns a TextDecoder for the tokens of t.
func (t *Tokenizer) NewTextDecoder() *TextDecoder {
	return &TextDecoder{t: t}
}

// Append appends to dst the printable text that token, following prev, adds
// to the stream, and returns the extended slice. The text is that of
// [Tokenizer.Decode]; it may be empty while a character is incomplete. Append
// does not allocate when dst has enough capacity.
func (d *TextDecoder) Append(dst []byte, prev, token int) []byte {
	text, _ := d.t.decode(prev, token)
	if d.t.kind == kindBPE {
		// Byte-level BPE pieces are bytes, which may end or start in the
		// middle of a character: all of them go through the assembler.
		for i := 0; i < len(text); i++ {
			dst = d.appendByte(dst, text[i])
		}
		return dst
	}
	switch len(text) {
	case 0:
		// Nothing to add (e.g. " " after BOS); a pending character can
		// still complete.
		return dst
	case 1:
		// A raw-byte token and a one-byte piece are the same byte.
		return d.appendByte(dst, text[0])
	}
	// A multi-byte piece is printed as it is; it interrupts any pending
	// character, which can then never complete.
	d.n = 0
	return append(dst, text...)
}

// Flush ends the stream: it drops the bytes of an incomplete character and
// returns dst, to which it has nothing to add. The decoder is ready for a
// new stream.
func (d *TextDecoder) Flush(dst []byte) []byte {
	d.n = 0
	return dst
}

// Reset discards any pending bytes, so that d starts a new stream.
func (d *TextDecoder) Reset() {
	d.n = 0
}

// appendByte adds one byte to the stream.
func (d *TextDecoder) appendByte(dst []byte, b byte) []byte {
	if d.n > 0 {
		if isContinuation(b) {
			return d.continueChar(dst, b)
		}
		// The pending character is cut short; b may start a new one.
		d.n = 0
	}
	switch {
	case b < utf8.RuneSelf:
		if isPrintableASCII(b) {
			dst = append(dst, b)
		}
	case utf8.RuneStart(b) && b >= 0xC2 && b <= 0xF4:
		// A lead byte that some valid character starts with. (0xC0, 0xC1
		// only start overlong encodings, 0xF5..0xFF nothing.)
		d.pending[0] = b
		d.n = 1
	default:
		// A stray continuation byte or an invalid lead byte: dropped.
	}
	return dst
}

// continueChar adds the continuation byte b to the pending character and
// emits the character when it is complete.
func (d *TextDecoder) continueChar(dst []byte, b byte) []byte {
	d.pending[d.n] = b
	d.n++
	p := d.pending[:d.n]
	// FullRune is also true as soon as the bytes can no longer be valid
	// (for example an overlong E0 80 or a surrogate ED A0), so invalid
	// sequences are dropped early.
	if !utf8.FullRune(p) {
		return dst
	}
	d.n = 0
	if _, size := utf8.DecodeRune(p); size == len(p) {
		dst = append(dst, p...)
	}
	// Otherwise the lead byte cannot start a valid character with these
	// continuation bytes, and the remaining (continuation) bytes cannot
	// start one either: all are dropped.
	return dst
}

// isPrintableASCII reports whether run.c's safe_printf would print the
// ASCII byte b: isprint or isspace in the C locale.
func isPrintableASCII(b byte) bool {
	switch {
	case b >= 0x20 && b < 0x7F:
		return true
	case b == '\t', b == '\n', b == '\v', b == '\f', b == '\r':
		return true
	}
	return false
}
