package gguf

import "fmt"

// Type is a ggml tensor type id as stored in GGUF.
type Type uint32

// Tensor types known to llama.cpp (commit c392e50). Ids 4, 5 and 31-33, 36-38
// belonged to layouts that llama.cpp has removed; they are unknown here.
const (
	TypeF32     Type = 0
	TypeF16     Type = 1
	TypeQ4_0    Type = 2
	TypeQ4_1    Type = 3
	TypeQ5_0    Type = 6
	TypeQ5_1    Type = 7
	TypeQ8_0    Type = 8
	TypeQ8_1    Type = 9
	TypeQ2_K    Type = 10
	TypeQ3_K    Type = 11
	TypeQ4_K    Type = 12
	TypeQ5_K    Type = 13
	TypeQ6_K    Type = 14
	TypeQ8_K    Type = 15
	TypeIQ2_XXS Type = 16
	TypeIQ2_XS  Type = 17
	TypeIQ3_XXS Type = 18
	TypeIQ1_S   Type = 19
	TypeIQ4_NL  Type = 20
	TypeIQ3_S   Type = 21
	TypeIQ2_S   Type = 22
	TypeIQ4_XS  Type = 23
	TypeI8      Type = 24
	TypeI16     Type = 25
	TypeI32     Type = 26
	TypeI64     Type = 27
	TypeF64     Type = 28
	TypeIQ1_M   Type = 29
	TypeBF16    Type = 30
	TypeTQ1_0   Type = 34
	TypeTQ2_0   Type = 35
)

// typeTraits mirrors ggml.c's type_traits: elements per block and bytes per
// block. The byte sizes are sizeof(block_*) from ggml-common.h, measured by
// compiling that header rather than recomputed by hand.
type typeTraits struct {
	name       string
	blockSize  int
	blockBytes int
}

var traits = [...]typeTraits{
	TypeF32:     {"F32", 1, 4},
	TypeF16:     {"F16", 1, 2},
	TypeQ4_0:    {"Q4_0", 32, 18},
	TypeQ4_1:    {"Q4_1", 32, 20},
	TypeQ5_0:    {"Q5_0", 32, 22},
	TypeQ5_1:    {"Q5_1", 32, 24},
	TypeQ8_0:    {"Q8_0", 32, 34},
	TypeQ8_1:    {"Q8_1", 32, 36},
	TypeQ2_K:    {"Q2_K", 256, 84},
	TypeQ3_K:    {"Q3_K", 256, 110},
	TypeQ4_K:    {"Q4_K", 256, 144},
	TypeQ5_K:    {"Q5_K", 256, 176},
	TypeQ6_K:    {"Q6_K", 256, 210},
	TypeQ8_K:    {"Q8_K", 256, 292},
	TypeIQ2_XXS: {"IQ2_XXS", 256, 66},
	TypeIQ2_XS:  {"IQ2_XS", 256, 74},
	TypeIQ3_XXS: {"IQ3_XXS", 256, 98},
	TypeIQ1_S:   {"IQ1_S", 256, 50},
	TypeIQ4_NL:  {"IQ4_NL", 32, 18},
	TypeIQ3_S:   {"IQ3_S", 256, 110},
	TypeIQ2_S:   {"IQ2_S", 256, 82},
	TypeIQ4_XS:  {"IQ4_XS", 256, 136},
	TypeI8:      {"I8", 1, 1},
	TypeI16:     {"I16", 1, 2},
	TypeI32:     {"I32", 1, 4},
	TypeI64:     {"I64", 1, 8},
	TypeF64:     {"F64", 1, 8},
	TypeIQ1_M:   {"IQ1_M", 256, 56},
	TypeBF16:    {"BF16", 1, 2},
	TypeTQ1_0:   {"TQ1_0", 256, 54},
	TypeTQ2_0:   {"TQ2_0", 256, 66},
}

func (t Type) traits() typeTraits {
	if int64(t) < int64(len(traits)) {
		return traits[t]
	}
	return typeTraits{}
}

// Known reports whether t is a tensor type this package can size.
func (t Type) Known() bool { return t.traits().blockSize > 0 }

// String returns the type's name as llama.cpp prints it in upper case
// ("Q4_K", "BF16"), or "type(N)" for an unknown id.
func (t Type) String() string {
	if tr := t.traits(); tr.blockSize > 0 {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize returns the number of elements in one block of t (1 for F32,
// F16 and BF16, 32 for Q4_0 and Q8_0, 256 for the K-quants), or 0 when t is
// unknown.
func (t Type) BlockSize() int { return t.traits().blockSize }

// BlockBytes returns the number of bytes one block of t occupies, or 0 when
// t is unknown.
func (t Type) BlockBytes() int { return t.traits().blockBytes }

// RowBytes returns the number of bytes that n elements of type t occupy. It
// reports false when t is unknown, n is negative, n is not a multiple of the
// block size, or the size does not fit in an int64.
func (t Type) RowBytes(n int64) (int64, bool) {
	tr := t.traits()
	if tr.blockSize == 0 || n < 0 || n%int64(tr.blockSize) != 0 {
		return 0, false
	}
	blocks := n / int64(tr.blockSize)
	if blocks > maxInt64/int64(tr.blockBytes) {
		return 0, false
	}
	return blocks * int64(tr.blockBytes), true
}

const maxInt64 = 1<<63 - 1
