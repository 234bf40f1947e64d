package kernels

import "encoding/binary"

// Reference loops and pure-Go twins of the legacy block types
// (blocks_legacy.go).

// matVecLegacyGeneric is the reference: out[r] = Σ_b d*xs[b]*Σ_i quant_i*xq_i
// (+ m*xs[b]*Σ_i xq_i), every value decoded by legacyLayout.quant, the
// terms added in block order. xsum is not read.
func matVecLegacyGeneric(l *legacyLayout, out []float32, w []byte, xq []int8, xs []float32) {
	nb := len(xq) / QBlock
	for r := range out {
		var total float32
		for b := range nb {
			blk := w[(r*nb+b)*l.bytes:][:l.bytes]
			var s, sx int32
			for i := range QBlock {
				x := int32(xq[b*QBlock+i])
				s += l.quant(blk, i) * x
				sx += x
			}
			total += F16ToF32(le16(blk)) * xs[b] * float32(s)
			if l.min {
				total += F16ToF32(le16(blk[2:])) * xs[b] * float32(sx)
			}
		}
		out[r] = total
	}
}

// matVecLegacyGo is the pure-Go twin: the nibbles of a block decoded in one
// pass for both halves, the offsets and minima applied once per block from
// xsum.
func matVecLegacyGo(l *legacyLayout, out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / QBlock
	rb := nb * l.bytes
	xs, xsum = xs[:nb], xsum[:nb]
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		var total float32
		for b, xsb := range xs {
			blk := row[b*l.bytes : (b+1)*l.bytes]
			q := blk[l.qs : l.qs+16 : l.qs+16]
			x := xq[b*QBlock : (b+1)*QBlock : (b+1)*QBlock]
			var s0, s1 int32
			switch {
			case l.table:
				for j, v := range q {
					s0 += int32(iq4nlValues[v&15]) * int32(x[j])
					s1 += int32(iq4nlValues[v>>4]) * int32(x[j+16])
				}
			case l.qh != 0:
				h := binary.LittleEndian.Uint32(blk[l.qh:])
				for j, v := range q {
					s0 += int32(v&15|byte(h>>j&1)<<4) * int32(x[j])
					s1 += int32(v>>4|byte(h>>(j+16)&1)<<4) * int32(x[j+16])
				}
			default:
				for j, v := range q {
					s0 += int32(v&15) * int32(x[j])
					s1 += int32(v>>4) * int32(x[j+16])
				}
			}
			total += F16ToF32(le16(blk)) * xsb * float32(s0+s1-l.off*xsum[b])
			if l.min {
				total += F16ToF32(le16(blk[2:])) * xsb * float32(xsum[b])
			}
		}
		out[r] = total
	}
}

func matVecQ4_1Generic(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	matVecLegacyGeneric(&layoutQ4_1, out, w, xq, xs)
}

func matVecQ5_0Generic(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	matVecLegacyGeneric(&layoutQ5_0, out, w, xq, xs)
}

func matVecQ5_1Generic(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	matVecLegacyGeneric(&layoutQ5_1, out, w, xq, xs)
}

func matVecIQ4NLGeneric(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	matVecLegacyGeneric(&layoutIQ4NL, out, w, xq, xs)
}

func matVecQ4_1Go(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecLegacyGo(&layoutQ4_1, out, w, xq, xs, xsum)
}

func matVecQ5_0Go(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecLegacyGo(&layoutQ5_0, out, w, xq, xs, xsum)
}

func matVecQ5_1Go(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecLegacyGo(&layoutQ5_1, out, w, xq, xs, xsum)
}

func matVecIQ4NLGo(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	matVecLegacyGo(&layoutIQ4NL, out, w, xq, xs, xsum)
}

// legacyImpl is one implementation of the legacy types' kernels, for
// tests and benchmarks: by type, in the order of legacyTypes.
type legacyImpl struct {
	name   string
	matVec [4]func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	matMat [4]func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
}

// legacyTypes are the types of legacyImpl's arrays, in order.
var legacyTypes = [4]struct {
	name    string
	layout  *legacyLayout
	dequant func(dst []float32, src []byte)
	generic func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
}{
	{"Q4_1", &layoutQ4_1, dequantRowQ4_1, matVecQ4_1Generic},
	{"Q5_0", &layoutQ5_0, dequantRowQ5_0, matVecQ5_0Generic},
	{"Q5_1", &layoutQ5_1, dequantRowQ5_1, matVecQ5_1Generic},
	{"IQ4_NL", &layoutIQ4NL, dequantRowIQ4NL, matVecIQ4NLGeneric},
}

// rowBlocks makes a batched product of a matrix-vector kernel of blocks of
// blockBytes (rowBlockMatMat).
func rowBlocks(vec func([]float32, []byte, []int8, []float32, []int32), blockBytes int) func([]float32, []byte, int, []int8, []float32, []int32, int) {
	return func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
		rowBlockMatMat(vec, blockBytes, out, w, rows, xq, xs, xsum, batch)
	}
}

// legacyGo is the pure-Go implementation, available everywhere.
var legacyGo = legacyImpl{
	name:   "go",
	matVec: [4]func([]float32, []byte, []int8, []float32, []int32){matVecQ4_1Go, matVecQ5_0Go, matVecQ5_1Go, matVecIQ4NLGo},
	matMat: [4]func([]float32, []byte, int, []int8, []float32, []int32, int){
		rowBlocks(matVecQ4_1Go, q4_1Bytes), rowBlocks(matVecQ5_0Go, q5_0Bytes),
		rowBlocks(matVecQ5_1Go, q5_1Bytes), rowBlocks(matVecIQ4NLGo, iq4nlBytes),
	},
}

// legacyImpls returns every implementation usable on this machine, fastest
// first (the first is the one the dispatching functions run).
func legacyImpls() []legacyImpl { return append(archLegacyImpls(), legacyGo) }
