package kernels

import (
	"slices"

	"github.com/llama2-go/llama2/gguf"
)

// BlockType is one of GGUF's quantized block types that the kernels
// compute with: its layout and its kernels (qblock.go gives their
// contract). The values are shared and read-only.
type BlockType struct {
	Type       gguf.Type
	BlockSize  int // values a block
	BlockBytes int
	// MatVec sets out[r] = row r of w · x for r < len(out), x quantized in
	// blocks of QBlock (values xq, scales xs, block sums xsum).
	MatVec func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	// MatMat is MatVec for batch vectors stored one after another:
	// out[b*rows+r] = row r · vector b.
	MatMat func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
	// Dequant writes len(dst) values of one row as float32 (the token
	// embedding); nil for resident panels (DequantResidentRow).
	Dequant func(dst []float32, src []byte)
	// SuperScale: the matrix-vector kernels want the activation's scales
	// equal within each super-block of qkK values (see qblock.go).
	SuperScale bool
	// Resident: the rows are repacked into resident panels (resident.go).
	Resident bool
	resident *residentLayout // the panels' layout, when Resident
}

// blockTypes are the block types with kernels, by GGUF type.
var blockTypes = map[gguf.Type]*BlockType{
	gguf.TypeQ8_0:   {gguf.TypeQ8_0, 32, 34, matVecQ8_0, matMatQ8_0, dequantRowQ8_0, false, false, nil},
	gguf.TypeQ4_0:   {gguf.TypeQ4_0, 32, 18, matVecQ4_0, matMatQ4_0, dequantRowQ4_0, false, false, nil},
	gguf.TypeQ4_K:   {gguf.TypeQ4_K, 256, 144, matVecQ4_K, matMatQ4_K, dequantRowQ4_K, true, false, nil},
	gguf.TypeQ5_K:   {gguf.TypeQ5_K, 256, 176, matVecQ5_K, matMatQ5_K, dequantRowQ5_K, true, false, nil},
	gguf.TypeQ6_K:   {gguf.TypeQ6_K, 256, 210, matVecQ6_K, matMatQ6_K, dequantRowQ6_K, true, false, nil},
	gguf.TypeQ4_1:   {gguf.TypeQ4_1, 32, q4_1Bytes, matVecQ4_1, matMatQ4_1, dequantRowQ4_1, false, false, nil},
	gguf.TypeQ5_0:   {gguf.TypeQ5_0, 32, q5_0Bytes, matVecQ5_0, matMatQ5_0, dequantRowQ5_0, false, false, nil},
	gguf.TypeQ5_1:   {gguf.TypeQ5_1, 32, q5_1Bytes, matVecQ5_1, matMatQ5_1, dequantRowQ5_1, false, false, nil},
	gguf.TypeIQ4_NL: {gguf.TypeIQ4_NL, 32, iq4nlBytes, matVecIQ4NL, matMatIQ4NL, dequantRowIQ4NL, false, false, nil},
}

// Block returns the block type of t, or nil when no kernel computes with
// it.
func Block(t gguf.Type) *BlockType { return blockTypes[t] }

// BlockTypeNames lists the block types with kernels, sorted by name.
func BlockTypeNames() []string {
	var names []string
	for _, bt := range blockTypes {
		names = append(names, bt.Type.String())
	}
	slices.Sort(names)
	return names
}
