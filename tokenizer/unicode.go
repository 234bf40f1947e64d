package tokenizer

import (
	"sync"
	"unicode"
	"unicode/utf8"
)

// GPT-2's byte-level BPE spells every byte as a printable character:
// bytes that are printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand
// for themselves, the 68 others (controls, space, 0x7F..0xA0, 0xAD) for
// U+0100 onwards in byte order. Vocabulary pieces and merges are written
// in that alphabet: a space is "Ġ" (U+0120), a newline "Ċ" (U+010A).
var byteRunes = func() (toRune [256]rune) {
	next := rune(256)
	for b := range 256 {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
			r = next
			next++
		}
		toRune[b] = r
	}
	return toRune
}()

// runeByte is the reverse of byteRunes: the byte each character of the
// alphabet stands for (all are below U+0144), -1 for other characters.
var runeByte = func() (t [0x144]int16) {
	for i := range t {
		t[i] = -1
	}
	for b, r := range byteRunes {
		t[r] = int16(b)
	}
	return t
}()

// unmapBytes returns the bytes a piece in GPT-2's alphabet stands for, and
// false if the piece has a character outside the alphabet.
func unmapBytes(dst []byte, piece string) ([]byte, bool) {
	for _, r := range piece {
		if r < 0 || int(r) >= len(runeByte) || runeByte[r] < 0 {
			return dst, false
		}
		dst = append(dst, byte(runeByte[r]))
	}
	return dst, true
}

// mapBytes appends the GPT-2 alphabet spelling of the bytes s.
func mapBytes(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = utf8.AppendRune(dst, byteRunes[s[i]])
	}
	return dst
}

// Character classes of the pre-tokenizers' patterns: \p{L}, \p{N}, \s,
// and everything else. Whitespace is Unicode's White_Space (the set
// llama.cpp's unicode tables hold); letters and numbers are the L and N
// general categories of Go's unicode package.
const (
	classOther uint8 = iota
	classLetter
	classNumber
	classSpace
	classPunct = 1 << 7 // flag: \p{P}, for the "default" pre-tokenizer
)

// asciiClass classifies the ASCII characters without a table lookup
// through classes.
var asciiClass = func() (c [utf8.RuneSelf]uint8) {
	for r := range rune(utf8.RuneSelf) {
		c[r] = classify(r) &^ classPunct
	}
	return c
}()

// classify returns the class of r from Go's unicode tables.
func classify(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsSpace(r):
		c = classSpace
	case unicode.IsLetter(r):
		c = classLetter
	case unicode.IsNumber(r):
		c = classNumber
	}
	if unicode.IsPunct(r) {
		c |= classPunct
	}
	return c
}

var (
	classesOnce sync.Once
	classes     []uint8 // by code point, built on first use: 1.1 MB
)

// classTable returns the class of every code point. Looking a class up in
// a flat table costs one load: classifying every character of the 1 MiB
// benchmark text took 18 ms so, 46 ms through unicode.IsSpace, IsLetter,
// IsNumber and IsPunct (binary searches over range tables). Built from the
// range tables, not code point by code point, it takes 0.3 ms.
func classTable() []uint8 {
	classesOnce.Do(func() {
		t := make([]uint8, unicode.MaxRune+1)
		mark := func(tab *unicode.RangeTable, c uint8) {
			for _, r := range tab.R16 {
				for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
					t[x] |= c
				}
			}
			for _, r := range tab.R32 {
				for x := rune(r.Lo); x <= rune(r.Hi); x += rune(r.Stride) {
					t[x] |= c
				}
			}
		}
		mark(unicode.L, classLetter)
		mark(unicode.N, classNumber)
		mark(unicode.P, classPunct)
		for r := range rune(utf8.RuneSelf) {
			t[r] = classify(r)
		}
		for _, r := range []rune{0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000} {
			t[r] = classSpace | t[r]&classPunct
		}
		for r := rune(0x2000); r <= 0x200A; r++ {
			t[r] = classSpace | t[r]&classPunct
		}
		classes = t
	})
	return classes
}

// scanner walks text one character at a time with its class. Invalid
// UTF-8 bytes are one character each, of the class of U+FFFD (other), as
// llama.cpp classifies them; they are kept as they are, where llama.cpp
// replaces them with U+FFFD's bytes, so any bytes encode and decode back.
type scanner struct {
	text    string
	classes []uint8
}

// at returns the class and byte length of the character at i < len(text).
func (s *scanner) at(i int) (class uint8, size int) {
	if c := s.text[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s.text[i:])
	return s.classes[r] &^ classPunct, n
}

// punct reports whether the character at i is \p{P}, and its length.
func (s *scanner) punct(i int) (bool, int) {
	r, n := utf8.DecodeRuneInString(s.text[i:])
	return s.classes[r]&classPunct != 0, n
}
