package grammar

import (
	"slices"
	"unicode/utf8"
)

// Character classes are over Unicode code points; the automata read bytes.
// A class becomes the UTF-8 byte sequences of its code points, as ranges
// of bytes per position (the construction RE2 and Go's regexp use), so a
// grammar's output is always valid UTF-8.

// normalizeRanges sorts and merges ranges, and removes the surrogates,
// which UTF-8 cannot encode.
func normalizeRanges(rs []runeRange) []runeRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var out []runeRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return cutSurrogates(out)
}

func cutSurrogates(rs []runeRange) []runeRange {
	var out []runeRange
	for _, r := range rs {
		if r.hi < 0xD800 || r.lo > 0xDFFF {
			out = append(out, r)
			continue
		}
		if r.lo < 0xD800 {
			out = append(out, runeRange{r.lo, 0xD7FF})
		}
		if r.hi > 0xDFFF {
			out = append(out, runeRange{0xE000, r.hi})
		}
	}
	return out
}

// negateRanges is the complement of normalized ranges within the code
// points.
func negateRanges(rs []runeRange) []runeRange {
	var out []runeRange
	next := rune(0)
	for _, r := range rs {
		if r.lo > next {
			out = append(out, runeRange{next, r.lo - 1})
		}
		next = r.hi + 1
	}
	if next <= utf8.MaxRune {
		out = append(out, runeRange{next, utf8.MaxRune})
	}
	return cutSurrogates(out)
}

// byteRange is one position of a UTF-8 sequence.
type byteRange struct{ lo, hi byte }

// utf8Sequences splits the code points lo..hi (no surrogates) into byte
// range sequences: every code point's encoding matches exactly one.
func utf8Sequences(lo, hi rune, out [][]byteRange) [][]byteRange {
	// Split at the encoded-length boundaries.
	for _, max := range []rune{0x7F, 0x7FF, 0xFFFF} {
		if lo <= max && hi > max {
			out = utf8Sequences(lo, max, out)
			return utf8Sequences(max+1, hi, out)
		}
	}
	if hi < 0x80 {
		return append(out, []byteRange{{byte(lo), byte(hi)}})
	}
	// Split until all but the first byte cover whole continuation ranges
	// or the first bytes are equal.
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1 // the low 6*i bits
		if lo&^m != hi&^m {
			if lo&m != 0 {
				out = utf8Sequences(lo, lo|m, out)
				return utf8Sequences((lo|m)+1, hi, out)
			}
			if hi&m != m {
				out = utf8Sequences(lo, (hi&^m)-1, out)
				return utf8Sequences(hi&^m, hi, out)
			}
		}
	}
	var a, b [utf8.UTFMax]byte
	utf8.EncodeRune(a[:], lo)
	utf8.EncodeRune(b[:], hi)
	seq := make([]byteRange, n)
	for i := range seq {
		seq[i] = byteRange{a[i], b[i]}
	}
	return append(out, seq)
}
