package tokenizer

import "unsafe"

// strTable maps a byte-level BPE vocabulary's pieces to their ids.
// Reading Llama 3's vocabulary looks up about 840k pieces (both sides of
// 280k merges and what they merge into). A Go map of the 128k pieces took
// 19-32 ms to build where this table takes 4-7 ms; lookups cost about the
// same in both (60-70 ms for all, bound by cache misses on a loaded
// machine), which is why the merges are resolved on all CPUs and
// one-character pieces skip the table (pairTable.build). A slot is 8
// bytes: a 32-bit fingerprint of the hash and the id (2 MiB for Llama 3);
// a piece is compared only when its fingerprint matches.
type strTable struct {
	slots  []strSlot
	shift  uint
	pieces []string
}

type strSlot struct {
	fp uint32 // hash fingerprint
	id int32  // id + 1; 0 marks an empty slot
}

// newStrTable indexes pieces; of equal pieces the highest id is kept, as
// llama.cpp's token_to_id keeps the last.
func newStrTable(pieces []string) *strTable {
	size, bits := 2, uint(1) // at least one slot stays empty
	for size < 2*len(pieces) {
		size *= 2
		bits++
	}
	t := &strTable{slots: make([]strSlot, size), shift: 64 - bits, pieces: pieces}
	mask := uint64(size - 1)
	for id, p := range pieces {
		h := strHash(p)
		for i := h >> t.shift; ; i = (i + 1) & mask {
			s := &t.slots[i]
			if s.id == 0 {
				*s = strSlot{fp: uint32(h), id: int32(id + 1)}
				break
			}
			if s.fp == uint32(h) && pieces[s.id-1] == p {
				s.id = int32(id + 1)
				break
			}
		}
	}
	return t
}

// find returns the id of piece s, or -1.
func (t *strTable) find(s string) int {
	h := strHash(s)
	mask := uint64(len(t.slots) - 1)
	for i := h >> t.shift; ; i = (i + 1) & mask {
		slot := t.slots[i]
		if slot.id == 0 {
			return -1
		}
		if slot.fp == uint32(h) && t.pieces[slot.id-1] == s {
			return int(slot.id - 1)
		}
	}
}

// strHash hashes s 8 bytes at a time (the compiler makes each group of
// byte loads one load on amd64 and arm64).
func strHash(s string) uint64 {
	h := uint64(len(s)) * 0x9E3779B97F4A7C15
	for ; len(s) >= 8; s = s[8:] {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ w) * 0xBF58476D1CE4E5B9
		h ^= h >> 31
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	h = (h ^ w) * 0x94D049BB133111EB
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	return h ^ h>>32
}

// isConcat reports whether id is a token whose piece is a followed by b.
func (t *strTable) isConcat(id int, a, b string) bool {
	if id < 0 || id >= len(t.pieces) {
		return false
	}
	p := t.pieces[id]
	return len(p) == len(a)+len(b) && p[:len(a)] == a && p[len(a):] == b
}

// findConcat is find(a + b) without building the string.
func (t *strTable) findConcat(a, b string) int {
	var buf [64]byte
	s := append(append(buf[:0], a...), b...)
	return t.find(unsafe.String(unsafe.SliceData(s), len(s)))
}
