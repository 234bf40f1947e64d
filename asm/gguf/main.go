// Command gguf generates internal/kernels/blocks_amd64.s, the kernels of GGUF's
// weight types F16, BF16, Q8_0 and Q4_0 in package model, with avo
// (github.com/mmcloughlin/avo).
//
//	cd asm && go run ./gguf -out ../internal/kernels/blocks_amd64.s -pkg kernels
//
// (or `go generate ./internal/kernels/`, see internal/kernels/blocks_amd64.go). The Go
// declarations, with the loop each routine computes, are hand-written in
// internal/kernels/blocks_amd64.go; go vet's asmdecl check compares the
// signatures.
//
// # Float types (half.go)
//
// F16 weights widen exactly with VCVTPH2PS, BF16 with a zero-extension to
// dwords and a 16-bit shift; then it is the float32 kernel: FMAs into one
// accumulator per row (and per unrolled vector), a horizontal sum at the
// end. AVX512_BF16's VDPBF16PS is not used: it would round x to bfloat16.
//
// # Block types
//
// The matrix-vector kernels read the weights in the file's blocks (34 or
// 18 bytes, unaligned). Each 64-byte step takes two blocks of x (one zmm) and, per row, the two
// matching blocks rearranged into one zmm of unsigned bytes:
//
//   - Q8_0: the 32+32 int8 values, XORed with 0x80: w+128 is unsigned, and
//     Σ(w+128)*x = Σ w*x + 128*Σx.
//   - Q4_0: the nibbles (0..15) in x's order: VPERMB places each byte of
//     the 16+16 under both halves of the block, VPSRLVW shifts the high
//     halves by 4, an AND keeps the nibbles. Σ q*x - 8*Σx is the block's
//     Σ(q-8)*x.
//
// VPDPBUSD multiplies them by x (signed). The offset's correction c*Σx (c =
// 128 or 8) is subtracted in int32 so the sums stay exact: the matrix-
// vector kernels compute it per dword lane (VPDPBUSD of x with the bytes c,
// once per step for all rows), the panel kernels once per block from xsum.
//
// The batched products repack 16 rows at a time into panels (panel.go).
// Q8_0 and Q4_0 weights read into memory get a panel layout once, at load,
// and keep it (resident.go): generation and prompts then read the panels
// as they are.
package main

import (
	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// q4Perm is the VPERMB index placing the nibble bytes of two Q4_0 blocks
// read from the first one's d (the 36 bytes d0, qs0, d1, qs1) under x's
// values: bytes 0-15 and 16-31 of the result are qs0 (low, then high
// nibbles), 32-47 and 48-63 are qs1.
var q4Perm, q4Shift, q4DIdx Mem

func main() {
	ConstraintExpr("amd64,!purego")

	q4Perm = GLOBL("ggufq4perm", RODATA|NOPTR)
	for i := range 64 {
		v := 2 + i%16
		if i >= 32 {
			v += 18
		}
		DATA(i, U8(v))
	}
	// q4DIdx: VPERMW index of the two blocks' d (words 0 and 9 of the 36
	// bytes) under the low and high 8 dword lanes, as 16 words.
	q4DIdx = GLOBL("ggufq4didx", RODATA|NOPTR)
	for i := range 32 {
		DATA(2*i, U16(9*((i/8)%2)))
	}
	// q4Shift: VPSRLVW counts, 4 for the words of the high-nibble halves.
	q4Shift = GLOBL("ggufq4shift", RODATA|NOPTR)
	for i := range 32 {
		DATA(2*i, U16(4*((i/8)%2)))
	}

	halfMatVecAVX512("matVecF16AVX512", false)
	halfMatVecAVX512("matVecBF16AVX512", true)
	halfTileAVX512("matMatF16x4x4AVX512", false)
	halfTileAVX512("matMatBF16x4x4AVX512", true)
	halfMatVecAVX2("matVecF16AVX2", false)
	halfMatVecAVX2("matVecBF16AVX2", true)

	q4.perm, q4.dIdx = q4Perm, q4DIdx
	legacyData()

	sumsData()
	for _, bt := range []*blockType{q8, q4, q50, iq4nl} {
		blockSumsVNNI(bt)
	}
	blockMatVecAVX2(q8)
	blockMatVecAVX2(q4)
	for _, bt := range legacyTypes {
		if bt.min {
			blockMatVecVNNI(bt)
		}
		blockMatVecAVX2(bt)
	}

	panelData()
	panelPack(q8)
	panelPack(q4)
	panelPack(q50)
	panelPack(iq4nl)
	for _, rl := range []*residentLayout{nil, &residentQ8_0, &residentQ4_0} {
		for _, v := range panelVectors {
			panelMatMat(v, rl)
		}
	}
	residentMatVec(residentQ8_0)
	residentMatVec(residentQ4_0)
	for _, zmm := range []bool{true, false} {
		dequantRowsF16(zmm)
		dequantRowsQ8_0(zmm)
	}

	Generate()
}

type gpr = Register

// vpdpbusd emits VPDPBUSD s8, u8, acc (Go operand order): for each dword
// lane, acc += the sum of the 4 products of the unsigned bytes of u8 with
// the signed bytes of s8. avo v0.5.0's instruction table predates AVX-512
// VNNI, so the instruction is built by hand (the Go assembler knows it).
func vpdpbusd(s8, u8, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Operands: []Op{s8, u8, acc},
		Inputs:   []Op{s8, u8, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

// rowAt addresses byte off of row r (r < 4) of a block of rows stride bytes
// apart starting at base; stride3 holds 3*stride.
func rowAt(base, stride, stride3 gpr, r, off int) Mem {
	switch r {
	case 0:
		return Mem{Base: base, Disp: off}
	case 1:
		return Mem{Base: base, Index: stride, Scale: 1, Disp: off}
	case 2:
		return Mem{Base: base, Index: stride, Scale: 2, Disp: off}
	}
	return Mem{Base: base, Index: stride3, Scale: 1, Disp: off}
}

// times3 returns a new register holding 3*v.
func times3(v gpr) gpr {
	t := GP64()
	LEAQ(Mem{Base: v, Index: v, Scale: 2}, t)
	return t
}

// broadcastByte returns a zmm (or ymm) with every byte b.
func broadcastByte(b byte, zmm bool) VecVirtual {
	t := GP32()
	MOVL(U32(uint32(b)*0x01010101), t)
	if zmm {
		v := ZMM()
		VPBROADCASTD(t, v)
		return v
	}
	v := YMM()
	x := XMM()
	MOVD(t, x)
	VPBROADCASTD(x, v)
	return v
}

// maskLow sets k to the low rem bits (rem < 32).
func maskLow(rem GPVirtual, k Register) {
	ones, t := GP32(), GP32()
	MOVL(I32(-1), ones)
	BZHIL(rem.As32(), ones, t)
	KMOVD(t, k)
}

// hsum4 reduces four zmm float accumulators to an xmm [Σa Σb Σc Σd], with
// EVEX-encodable instructions only (VHADDPS cannot reach Z16-Z31, which the
// tile kernels use): the fold of asm/q8 in float, then the 128-bit lanes.
func hsum4(a [4]VecVirtual) VecVirtual {
	pair := func(x, y VecVirtual) VecVirtual {
		lo := ZMM()
		VUNPCKLPD(y, x, lo) // [x0 x1 y0 y1]
		VUNPCKHPD(y, x, x)  // [x2 x3 y2 y3]
		VADDPS(x, lo, lo)
		return lo
	}
	ab, cd := pair(a[0], a[1]), pair(a[2], a[3])
	t := ZMM()
	VSHUFPS(U8(0x88), cd, ab, t)  // [ab0 ab2 cd0 cd2]
	VSHUFPS(U8(0xdd), cd, ab, ab) // [ab1 ab3 cd1 cd3]
	VADDPS(ab, t, t)
	return laneSum(t)
}

// hsum1t reduces a zmm to its sum in the low lane of an xmm by hsum4's
// tree for one row: ((z0+z2)+(z1+z3)) per 128-bit lane q, then
// (S0+S2)+(S1+S3).
func hsum1t(z VecVirtual) VecVirtual {
	lo, hi := ZMM(), ZMM()
	VUNPCKLPD(z, z, lo) // [z0 z1 z0 z1]
	VUNPCKHPD(z, z, hi) // [z2 z3 z2 z3]
	VADDPS(hi, lo, lo)
	VPERMILPS(U8(0xb1), lo, hi)
	VADDPS(hi, lo, lo)
	return laneSum(lo)
}

// laneSum adds the four 128-bit lanes of a zmm into an xmm:
// (L0+L2)+(L1+L3).
func laneSum(z VecVirtual) VecVirtual {
	h := ymmSum(z)
	x := XMM()
	VEXTRACTF32X4(U8(1), h, x)
	VADDPS(h.AsX(), x, x)
	return x
}

// rowsApart holds the registers of a matrix-vector kernel that takes rows 4
// at a time, a quarter of the rows apart (rows i, q+i, 2q+i, 3q+i): q =
// rows/4, the count of such groups; qrb and qrb3 the distance of the rows
// in w, 1 and 3 times q*rowBytes; q4 and q43 in out, 1 and 3 times 4q.
type rowsApart struct{ q, qrb, qrb3, q4, q43 gpr }

func newRowsApart(rows, rowBytes gpr) rowsApart {
	Comment("q = rows/4: rows i, q+i, 2q+i and 3q+i (i < q) go together.")
	q := GP64()
	MOVQ(rows, q)
	SHRQ(U8(2), q)
	qrb, q4 := GP64(), GP64()
	MOVQ(q, qrb)
	IMULQ(rowBytes, qrb)
	MOVQ(q, q4)
	SHLQ(U8(2), q4)
	return rowsApart{q, qrb, times3(qrb), q4, times3(q4)}
}

// begin starts the pass over groups of R rows (4, then 1): it jumps to end
// when there are none and, for R = 1, moves wrow and op to row 4q, the
// first of the last rows%4.
func (ra rowsApart) begin(R int, rows, wrow, op gpr, end string) {
	if R == 4 {
		TESTQ(ra.q, ra.q)
		JZ(LabelRef(end))
		return
	}
	Comment("The last rows%4, from row 4q.")
	ANDQ(U8(3), rows)
	JZ(LabelRef(end))
	ADDQ(ra.qrb3, wrow)
	ADDQ(ra.q43, op)
}

// store writes the lanes of s, the sums of a group's 4 rows, to their
// places in out, whose group's first row is at op.
func (ra rowsApart) store(s VecVirtual, op gpr) {
	VMOVSS(s, Mem{Base: op})
	for r := 1; r < 4; r++ {
		VEXTRACTPS(U8(r), s, rowAt(op, ra.q4, ra.q43, r, 0))
	}
}

// hsum1z reduces a zmm to its sum in the low lane of an xmm (EVEX only).
func hsum1z(z VecVirtual) VecVirtual {
	x, t := laneSum(z), XMM()
	VPERMILPS(U8(0x4e), x, t)
	VADDPS(t, x, x)
	VPERMILPS(U8(0xb1), x, t)
	VADDPS(t, x, x)
	return x
}

// ymmSum adds the two 256-bit halves of a zmm.
func ymmSum(z VecVirtual) VecVirtual {
	h := YMM()
	VEXTRACTF64X4(U8(1), z, h)
	VADDPS(h, z.AsY(), h)
	return h
}

// hadd4 reduces four ymm float accumulators to an xmm [Σa Σb Σc Σd]
// (AVX2 kernels).
func hadd4(y [4]VecVirtual) VecVirtual {
	VHADDPS(y[1], y[0], y[0]) // [a01 a23 b01 b23 | a45 a67 b45 b67]
	VHADDPS(y[3], y[2], y[2])
	VHADDPS(y[2], y[0], y[0]) // [a b c d | a' b' c' d']
	x := XMM()
	VEXTRACTF128(U8(1), y[0], x)
	VADDPS(y[0].AsX(), x, x)
	return x
}

// hadd1 reduces a ymm to its sum in the low lane of an xmm by hadd4's tree
// for one row, ((y0+y1)+(y2+y3)) + ((y4+y5)+(y6+y7)), so that a row's
// value does not depend on whether it went with 3 others.
func hadd1(y VecVirtual) VecVirtual {
	t := YMM()
	VHADDPS(y, y, t) // [y01 y23 y01 y23 | y45 y67 y45 y67]
	VHADDPS(t, t, t)
	x := XMM()
	VEXTRACTF128(U8(1), t, x)
	VADDPS(t.AsX(), x, x)
	return x
}

// hsum1 reduces a ymm to its sum in the low lane of an xmm (AVX2 kernels).
func hsum1(y VecVirtual) VecVirtual {
	x := XMM()
	VEXTRACTF128(U8(1), y, x)
	VADDPS(y.AsX(), x, x)
	VHADDPS(x, x, x)
	VHADDPS(x, x, x)
	return x
}
