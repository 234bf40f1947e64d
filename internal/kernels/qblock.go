package kernels

// GGUF's quantized block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, and
// the K-quants Q4_K, Q5_K, Q6_K) all multiply an activation quantized in
// blocks of QBlock values: int8 values xq with one float32 scale per block
// (xs, max|x|/127, C's rounding; QuantizeActivation with gs = QBlock) and
// the int32 sum of each block's values (xsum), which the types with an
// offset or a minimum (Q4_0's -8, Q5_0's -16, the minima of Q4_1, Q5_1
// and the K-quants) need to apply it once per block instead of once per
// value.
//
// Their kernels share one shape, so tensor.go can dispatch on the type:
//
//	matVecT(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
//	    out[r] = row r of w · x, for r < len(out); n = len(xq) values a row,
//	    row r's blocks at w[r*rowBytes:]
//	matMatT(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
//	    the same for batch vectors stored one after another (xq: batch*n,
//	    xs and xsum: batch*n/QBlock): out[b*rows+r] = row r · vector b
//	dequantRowT(dst []float32, src []byte)
//	    len(dst) values of one row (the token embedding)
//
// The K-quants' matrix-vector kernels further want the scales of each
// super-block of qkK values equal, as llama.cpp's Q8_K activations have one
// scale per 256 values: with one scale the sub-blocks' integer sums add up
// before a single conversion to float, and the mins' terms become one
// integer product (asm/kquant). So an activation that multiplies any
// K-quant tensor is quantized by QuantizeSuperBlocks; the other kernels,
// and the K-quants' own Go, AVX2 and batched kernels, take either form.
const QBlock = 32

// blockSums sets xsum[b] to the sum of xq[b*QBlock : (b+1)*QBlock] for
// every whole block of xq.
func blockSums(xsum []int32, xq []int8) {
	for b := range len(xq) / QBlock {
		var s int32
		for _, v := range xq[b*QBlock : (b+1)*QBlock] {
			s += int32(v)
		}
		xsum[b] = s
	}
}
