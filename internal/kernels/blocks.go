package kernels

// Kernels of GGUF's weight types F16, BF16, Q8_0 and Q4_0.
//
// As for the float32 and Q8 kernels (f32.go, q8.go) each comes
// in three forms:
//
//   - the dispatching function (MatVecF16, matMatQ4_0, ...) that tensor.go
//     calls. It checks the lengths, then runs the fastest implementation for
//     this CPU (blocks_amd64.go: AVX-512 (with VNNI for the block
//     types), else AVX2, else Go; blocks_generic.go elsewhere).
//   - a plain reference loop (matVecF16Generic, ...) that defines the
//     result: every weight converted with F16ToF32/BF16ToF32 (or, for the
//     block types, an int32 sum per block times the block's scales), terms
//     added in order.
//   - a pure-Go twin (matVecF16Go, ...), used on other architectures and
//     with -tags purego.
//
// Unlike the llama2.c Q8 kernels, these are not bit-identical to their
// reference: the vector kernels keep one float accumulator per lane (and
// fuse multiply and add), so the float additions happen in another order.
// The tests bound the difference by the rounding error of the operation
// (see ggufTol in blocks_test.go). Integer block sums are exact in any
// order.
//
// Layouts (ggml-common.h): a row of n values is n/32 blocks; a Q8_0 block is
// 34 bytes (f16 scale d, 32 int8), a Q4_0 block 18 bytes (f16 d, 16 bytes
// of nibbles: value j is d*((qs[j]&15)-8), value j+16 is d*((qs[j]>>4)-8)).
// Blocks are read in place from the memory-mapped file, so nothing is
// aligned.

// Block sizes in bytes.
const (
	q8_0Bytes = 2 + QBlock
	q4_0Bytes = 2 + QBlock/2
)

// le16 reads the little-endian uint16 at b[0:2] (a block's f16 scale).
func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

// Length checks of the dispatching functions.

func checkMatVecHalf(name string, out []float32, w []uint16, x []float32) {
	if len(w) < len(out)*len(x) {
		panic("kernels: " + name + ": len(w) < len(out)*len(x)")
	}
}

func checkMatMatHalf(name string, out []float32, w []uint16, x []float32, batch int) {
	if batch <= 0 || len(x)%batch != 0 || len(out)%batch != 0 {
		panic("kernels: " + name + ": bad batch")
	}
	if len(w) < (len(out)/batch)*(len(x)/batch) {
		panic("kernels: " + name + ": len(w) < m*n")
	}
}

func checkBlocks(name string, blockBytes, rows, batch int, w []byte, xq []int8, xs []float32, xsum []int32) {
	if batch <= 0 || len(xq)%(batch*QBlock) != 0 {
		panic("kernels: " + name + ": len(xq) is not batch blocks of 32")
	}
	nb := len(xq) / QBlock
	if len(xs) < nb || len(xsum) < nb {
		panic("kernels: " + name + ": len(xs) or len(xsum) < blocks of xq")
	}
	if len(w) < rows*(nb/batch)*blockBytes {
		panic("kernels: " + name + ": len(w) < rows*rowBytes")
	}
}

// The dispatching functions (implementations in blocks_amd64.go and
// blocks_generic.go).

// MatVecF16 sets out[r] = Σ_j F16ToF32(w[r*n+j]) * x[j] for r < len(out),
// n = len(x).
func MatVecF16(out []float32, w []uint16, x []float32) {
	checkMatVecHalf("MatVecF16", out, w, x)
	matVecF16Impl(out, w, x)
}

// MatVecBF16 is MatVecF16 for bfloat16 weights.
func MatVecBF16(out []float32, w []uint16, x []float32) {
	checkMatVecHalf("MatVecBF16", out, w, x)
	matVecBF16Impl(out, w, x)
}

// MatMatF16 is MatVecF16 for a batch of vectors, with model.MatMat's
// contract: x holds batch vectors of n = len(x)/batch, out batch rows of
// m = len(out)/batch: out[b*m+r] = row r · x_b.
func MatMatF16(out []float32, w []uint16, x []float32, batch int) {
	checkMatMatHalf("MatMatF16", out, w, x, batch)
	matMatF16Impl(out, w, x, batch)
}

// MatMatBF16 is MatMatF16 for bfloat16 weights.
func MatMatBF16(out []float32, w []uint16, x []float32, batch int) {
	checkMatMatHalf("MatMatBF16", out, w, x, batch)
	matMatBF16Impl(out, w, x, batch)
}

// matVecQ8_0 sets out[r] = Σ_b F16ToF32(d_rb) * xs[b] * Σ_i qs_rb[i]*xq[32b+i]
// for r < len(out): row r's blocks start at w[r*rowBytes:], rowBytes =
// len(xq)/32*34. xsum (the block sums of xq) may be used.
func matVecQ8_0(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecQ8_0", q8_0Bytes, len(out), 1, w, xq, xs, xsum)
	matVecQ8_0Impl(out, w, xq, xs, xsum)
}

// matVecQ4_0 is matVecQ8_0 for Q4_0 rows (18-byte blocks):
// out[r] = Σ_b d_rb * xs[b] * Σ_i (q_rb[i]-8)*xq[32b+i].
func matVecQ4_0(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecQ4_0", q4_0Bytes, len(out), 1, w, xq, xs, xsum)
	matVecQ4_0Impl(out, w, xq, xs, xsum)
}

// matMatQ8_0 is matVecQ8_0 for batch vectors stored one after another (xq:
// batch*n, xs and xsum: batch*n/32): out[b*rows+r] = row r · vector b.
func matMatQ8_0(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkBlocks("matMatQ8_0", q8_0Bytes, rows, batch, w, xq, xs, xsum)
	if len(out) < rows*batch {
		panic("kernels: matMatQ8_0: len(out) < rows*batch")
	}
	matMatQ8_0Impl(out, w, rows, xq, xs, xsum, batch)
}

// matMatQ4_0 is matMatQ8_0 for Q4_0 rows.
func matMatQ4_0(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkBlocks("matMatQ4_0", q4_0Bytes, rows, batch, w, xq, xs, xsum)
	if len(out) < rows*batch {
		panic("kernels: matMatQ4_0: len(out) < rows*batch")
	}
	matMatQ4_0Impl(out, w, rows, xq, xs, xsum, batch)
}

// DequantRowF16 sets dst[i] = F16ToF32(src[i]) for i < len(dst). Rows are
// converted once per token (the embedding), so the Go loop is fast enough
// everywhere.
func DequantRowF16(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = F16ToF32(h)
	}
}

// DequantRowBF16 sets dst[i] = BF16ToF32(src[i]) for i < len(dst).
func DequantRowBF16(dst []float32, src []uint16) {
	src = src[:len(dst)]
	for i, h := range src {
		dst[i] = BF16ToF32(h)
	}
}

// dequantRowQ8_0 sets dst to the len(dst) values (a multiple of 32) of the
// Q8_0 blocks at src: d * qs[i].
func dequantRowQ8_0(dst []float32, src []byte) {
	for b := range len(dst) / QBlock {
		blk := src[b*q8_0Bytes : (b+1)*q8_0Bytes]
		d := F16ToF32(le16(blk))
		out := dst[b*QBlock : (b+1)*QBlock]
		for i, q := range blk[2:] {
			out[i] = d * float32(int8(q))
		}
	}
}

// dequantRowQ4_0 sets dst to the len(dst) values (a multiple of 32) of the
// Q4_0 blocks at src: d * (nibble - 8), low nibbles first.
func dequantRowQ4_0(dst []float32, src []byte) {
	for b := range len(dst) / QBlock {
		blk := src[b*q4_0Bytes : (b+1)*q4_0Bytes]
		d := F16ToF32(le16(blk))
		out := dst[b*QBlock : (b+1)*QBlock]
		for j, q := range blk[2:] {
			out[j] = d * float32(int32(q&15)-8)
			out[j+16] = d * float32(int32(q>>4)-8)
		}
	}
}

// QuantizeSuperBlocks is QuantizeBlocks with one scale for each super-block
// of qkK values (the last one may be shorter): max|x|/127 over the
// super-block, repeated in xs for each of its blocks. quantizeGroups writes
// the scales one per super-block at the front of xs; they are spread over
// the blocks last first, so that none is overwritten before it is read
// (block b reads xs[b/8], at or before b).
func QuantizeSuperBlocks(xq []int8, xs []float32, xsum []int32, x []float32) {
	nb := quantizeWithSums(xq, xs, xsum, x, qkK)
	for b := nb - 1; b >= 0; b-- {
		xs[b] = xs[b*QBlock/qkK]
	}
}

// QuantizeBlocks forms the activation of the block types from x (len(x) a
// multiple of 32): xq and xs as QuantizeActivation(xq, xs, x, 32), and xsum
// as blockSums(xsum, xq), in one pass (quantizeGroups: the AVX-512 kernel
// sums each block while it is in registers).
func QuantizeBlocks(xq []int8, xs []float32, xsum []int32, x []float32) {
	quantizeWithSums(xq, xs, xsum, x, QBlock)
}

// quantizeWithSums quantizes the whole blocks of x in groups of gs (a
// multiple of QBlock) with their block sums, and returns the number of
// blocks.
func quantizeWithSums(xq []int8, xs []float32, xsum []int32, x []float32, gs int) int {
	nb := len(x) / QBlock
	xq, xs, xsum, x = xq[:nb*QBlock], xs[:nb], xsum[:nb], x[:nb*QBlock]
	if !quantizeGroups(xq, xs, xsum, x, gs) {
		QuantizeQ8(xq, xs, x, gs, RoundHalfAwayFromZero)
		blockSums(xsum, xq)
	}
	return nb
}
