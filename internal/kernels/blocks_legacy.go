package kernels

import "encoding/binary"

// Kernels of the other legacy block types of 32 values: Q4_1, Q5_0, Q5_1
// and IQ4_NL. llama-quantize writes them where a K-quant does not fit (a
// row length that is not a multiple of 256: a Q4_K_M file of Qwen2.5-0.5B,
// width 896, holds Q5_0 for Q4_K) and in other mixes. Their shape is
// Q4_0's (blocks.go, qblock.go): a dispatching function per type, a
// reference loop and a pure-Go twin (blocks_legacy_go.go), AVX-512 VNNI
// and AVX2 kernels (blocks_legacy_amd64.go, ../../asm/gguf/legacy.go).
//
// Layouts (ggml-common.h), d and m float16, value j < 16 the low nibble
// of qs[j] and value j+16 the high one, the fifth bit of value i bit i of
// the little-endian uint32 qh:
//
//	Q4_1   20 bytes: d, m, qs[16]        value = d*q + m
//	Q5_0   22 bytes: d, qh[4], qs[16]    value = d*(q - 16)
//	Q5_1   24 bytes: d, m, qh[4], qs[16] value = d*q + m
//	IQ4_NL 18 bytes: d, qs[16]           value = d*iq4nlValues[q]
//
// With an activation quantized in blocks (xq, xs, xsum), a block's term is
// d*xs*Σ q'*x + m*xs*Σx, with q' the integer form above (q - 16, the
// table's value, or q): the int32 sums are exact.

const (
	q4_1Bytes  = 20
	q5_0Bytes  = 22
	q5_1Bytes  = 24
	iq4nlBytes = 18
)

// iq4nlValues is IQ4_NL's table of values (kvalues_iq4nl).
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// legacyLayout says where a legacy type keeps the parts of a block.
type legacyLayout struct {
	bytes int
	qs    int   // offset of the 16 bytes of nibbles
	qh    int   // offset of the 32 fifth bits, 0 for none
	min   bool  // an f16 minimum m at offset 2
	table bool  // IQ4_NL: the nibble indexes iq4nlValues
	off   int32 // subtracted from the 5-bit q (Q5_0)
}

var (
	layoutQ4_1  = legacyLayout{bytes: q4_1Bytes, qs: 4, min: true}
	layoutQ5_0  = legacyLayout{bytes: q5_0Bytes, qs: 6, qh: 2, off: 16}
	layoutQ5_1  = legacyLayout{bytes: q5_1Bytes, qs: 8, qh: 4, min: true}
	layoutIQ4NL = legacyLayout{bytes: iq4nlBytes, qs: 2, table: true}
)

// quant returns value i of the block blk as the integer the scale d
// multiplies (q - 16 for Q5_0, the table's value for IQ4_NL, else q).
func (l *legacyLayout) quant(blk []byte, i int) int32 {
	b := blk[l.qs+i%16]
	q := b & 15
	if i >= 16 {
		q = b >> 4
	}
	if l.qh != 0 {
		q |= byte(binary.LittleEndian.Uint32(blk[l.qh:])>>i&1) << 4
	}
	if l.table {
		return int32(iq4nlValues[q])
	}
	return int32(q) - l.off
}

// dequantRowLegacy sets dst to the len(dst) values (a multiple of 32) of
// the blocks at src: d*quant (+ m): a plain loop, the token embedding's.
func dequantRowLegacy(l *legacyLayout, dst []float32, src []byte) {
	for b := range len(dst) / QBlock {
		blk := src[b*l.bytes : (b+1)*l.bytes]
		d := F16ToF32(le16(blk))
		var m float32
		if l.min {
			m = F16ToF32(le16(blk[2:]))
		}
		out := dst[b*QBlock : (b+1)*QBlock]
		for i := range out {
			out[i] = d*float32(l.quant(blk, i)) + m
		}
	}
}

func dequantRowQ4_1(dst []float32, src []byte)  { dequantRowLegacy(&layoutQ4_1, dst, src) }
func dequantRowQ5_0(dst []float32, src []byte)  { dequantRowLegacy(&layoutQ5_0, dst, src) }
func dequantRowQ5_1(dst []float32, src []byte)  { dequantRowLegacy(&layoutQ5_1, dst, src) }
func dequantRowIQ4NL(dst []float32, src []byte) { dequantRowLegacy(&layoutIQ4NL, dst, src) }

// The dispatching functions (qblock.go's contract; implementations in
// blocks_legacy_amd64.go and blocks_legacy_generic.go).

// matVecQ4_1 sets out[r] = row r of the Q4_1 matrix w · x for r < len(out).
func matVecQ4_1(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecQ4_1", q4_1Bytes, len(out), 1, w, xq, xs, xsum)
	matVecQ4_1Impl(out, w, xq, xs, xsum)
}

// matVecQ5_0 is matVecQ4_1 for Q5_0.
func matVecQ5_0(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecQ5_0", q5_0Bytes, len(out), 1, w, xq, xs, xsum)
	matVecQ5_0Impl(out, w, xq, xs, xsum)
}

// matVecQ5_1 is matVecQ4_1 for Q5_1.
func matVecQ5_1(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecQ5_1", q5_1Bytes, len(out), 1, w, xq, xs, xsum)
	matVecQ5_1Impl(out, w, xq, xs, xsum)
}

// matVecIQ4NL is matVecQ4_1 for IQ4_NL.
func matVecIQ4NL(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	checkBlocks("matVecIQ4NL", iq4nlBytes, len(out), 1, w, xq, xs, xsum)
	matVecIQ4NLImpl(out, w, xq, xs, xsum)
}

// checkMatMatBlocks is checkBlocks for a batched product, with out.
func checkMatMatBlocks(name string, blockBytes int, out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkBlocks(name, blockBytes, rows, batch, w, xq, xs, xsum)
	if len(out) < rows*batch {
		panic("kernels: " + name + ": len(out) < rows*batch")
	}
}

// matMatQ4_1 sets out[b*rows+r] = row r of the Q4_1 matrix w · vector b.
func matMatQ4_1(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkMatMatBlocks("matMatQ4_1", q4_1Bytes, out, w, rows, xq, xs, xsum, batch)
	matMatQ4_1Impl(out, w, rows, xq, xs, xsum, batch)
}

// matMatQ5_0 is matMatQ4_1 for Q5_0.
func matMatQ5_0(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkMatMatBlocks("matMatQ5_0", q5_0Bytes, out, w, rows, xq, xs, xsum, batch)
	matMatQ5_0Impl(out, w, rows, xq, xs, xsum, batch)
}

// matMatQ5_1 is matMatQ4_1 for Q5_1.
func matMatQ5_1(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkMatMatBlocks("matMatQ5_1", q5_1Bytes, out, w, rows, xq, xs, xsum, batch)
	matMatQ5_1Impl(out, w, rows, xq, xs, xsum, batch)
}

// matMatIQ4NL is matMatQ4_1 for IQ4_NL.
func matMatIQ4NL(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	checkMatMatBlocks("matMatIQ4NL", iq4nlBytes, out, w, rows, xq, xs, xsum, batch)
	matMatIQ4NLImpl(out, w, rows, xq, xs, xsum, batch)
}

// rowBlockMatMat runs a matrix-vector kernel for each vector of a batch, a
// block of rows at a time (legacyBlockBytes of weights, which stay in L2),
// so that the weights are read from memory once per batch, not once per
// vector: the batched products of the types without panel kernels. A
// row's value is the matrix-vector kernel's whichever block it is in.
func rowBlockMatMat(vec func([]float32, []byte, []int8, []float32, []int32), blockBytes int, out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	rb := nb * blockBytes
	step := max(4, legacyBlockBytes/max(rb, 1))
	for r0 := 0; r0 < rows; r0 += step {
		r1 := min(r0+step, rows)
		for b := range batch {
			vec(out[b*rows+r0:b*rows+r1], w[r0*rb:r1*rb], xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
		}
	}
}

// legacyBlockBytes bounds the weights of a block of rows in rowBlockMatMat
// (as halfBlockBytes for the half types).
const legacyBlockBytes = 256 << 10
