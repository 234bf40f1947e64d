package model

import "github.com/llama2-go/llama2/gguf"

// blockType is one of GGUF's quantized block types that this package
// computes with: its layout and its kernels (qblock.go gives their
// contract).
type blockType struct {
	typ        gguf.Type
	blockSize  int // values a block
	blockBytes int
	matVec     func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	matMat     func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
	dequant    func(dst []float32, src []byte)
	// superScale: the matrix-vector kernels want the activation's scales
	// equal within each super-block of qkK values (see qblock.go).
	superScale bool
	// resident: the rows are repacked into resident panels (resident.go).
	resident bool
}

// blockTypes are the block types with kernels, by GGUF type.
var blockTypes = map[gguf.Type]*blockType{
	gguf.TypeQ8_0: {gguf.TypeQ8_0, 32, 34, matVecQ8_0, matMatQ8_0, dequantRowQ8_0, false, false},
	gguf.TypeQ4_0: {gguf.TypeQ4_0, 32, 18, matVecQ4_0, matMatQ4_0, dequantRowQ4_0, false, false},
	gguf.TypeQ4_K: {gguf.TypeQ4_K, 256, 144, matVecQ4_K, matMatQ4_K, dequantRowQ4_K, true, false},
	gguf.TypeQ5_K: {gguf.TypeQ5_K, 256, 176, matVecQ5_K, matMatQ5_K, dequantRowQ5_K, true, false},
	gguf.TypeQ6_K: {gguf.TypeQ6_K, 256, 210, matVecQ6_K, matMatQ6_K, dequantRowQ6_K, true, false},
}
