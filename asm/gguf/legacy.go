package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # The other legacy block types (ggml-common.h)
//
// Blocks of 32 values, like Q4_0, which llama-quantize writes when a row
// length is not a multiple of 256 (a K-quant's fallback: Q5_0 for Q4_K in
// a Q4_K_M file of Qwen2.5-0.5B, width 896) or in other mixes:
//
//	Q4_1   20 bytes: d, m (f16), qs[16]            value = d*q + m, q 0..15
//	Q5_0   22 bytes: d, qh[4], qs[16]              value = d*(q - 16), q 0..31
//	Q5_1   24 bytes: d, m, qh[4], qs[16]           value = d*q + m, q 0..31
//	IQ4_NL 18 bytes: d, qs[16]                     value = d*iq4nlValues[q], q 0..15
//
// Value j < 16 of a block takes the low nibble of qs[j], value j+16 the
// high one; the fifth bit of value i is bit i of qh (little-endian).
//
// The VNNI kernels unpack them as Q4_0's (blocks.go) into unsigned bytes:
// the nibbles, plus 16 under a byte mask loaded from qh (KMOVD: qh is the
// mask), or IQ4_NL's value + 128 by VPSHUFB; c is then 16 (Q5_0) or 128
// (IQ4_NL). Q4_1 and Q5_1 have no offset (c = 0) but a minimum per block:
// m*xs*Σx, one FMA per row and step of m (the lanes of the blocks' first
// dword) with xs*xsum (the activation's, once per step). Q5_0 and IQ4_NL
// fit the panel kernels of batched prompts (panel.go) too.

var (
	q41   = &blockType{name: "Q4_1", bytes: 20, q4: true, qs: 4, min: true}
	q50   = &blockType{name: "Q5_0", bytes: 22, q4: true, c: 16, qs: 6, qh: 2}
	q51   = &blockType{name: "Q5_1", bytes: 24, q4: true, qs: 8, qh: 4, min: true}
	iq4nl = &blockType{name: "IQ4_NL", bytes: 18, q4: true, c: 128, qs: 2, table: true}

	legacyTypes = []*blockType{q41, q50, q51, iq4nl}
)

// iq4nlValues is IQ4_NL's table (ggml-common.h's kvalues_iq4nl).
var iq4nlValues = [16]int8{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}

// Constants: iq4nlTable (the values + 128, unsigned) and iq4nlSigned, 16
// bytes each; for the AVX2 kernels, bitsShuf (byte i of a ymm takes byte
// i/8 of a broadcast dword) and bitsMask (byte i: every bit but i%8).
var iq4nlTable, iq4nlSigned, bitsShuf, bitsMask, spread4 Mem

// legacyData writes the constants and each nibble type's VPERMB and VPERMW
// indices (Q4_0's are main.go's).
func legacyData() {
	iq4nlTable = GLOBL("ggufiq4nltable", RODATA|NOPTR)
	for i, v := range iq4nlValues {
		DATA(i, U8(uint8(int(v)+128)))
	}
	iq4nlSigned = GLOBL("ggufiq4nlsigned", RODATA|NOPTR)
	for i, v := range iq4nlValues {
		DATA(i, U8(uint8(v)))
	}
	bitsShuf = GLOBL("ggufbitsshuf", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(i/8))
	}
	bitsMask = GLOBL("ggufbitsmask", RODATA|NOPTR)
	for i := range 32 {
		DATA(i, U8(^uint8(1<<(i%8))))
	}
	// spread4: 1 + 1<<7 + 1<<14 + 1<<21 moves bits 0-3 of a dword to
	// bits 0, 8, 16 and 24 (the panel packer's fifth bits).
	spread4 = GLOBL("ggufspread4", RODATA|NOPTR)
	DATA(0, U32(0x00204081))
	for _, bt := range legacyTypes {
		bt.perm = GLOBL("gguf"+bt.name+"perm", RODATA|NOPTR)
		for i := range 64 {
			DATA(i, U8((i/32)*bt.bytes+bt.qs+i%16))
		}
		idx := func(name string, w int) Mem {
			m := GLOBL(name, RODATA|NOPTR)
			for i := range 32 {
				DATA(2*i, U16(w+bt.bytes/2*((i/8)%2)))
			}
			return m
		}
		bt.dIdx = idx("gguf"+bt.name+"didx", 0)
		if bt.min {
			bt.mIdx = idx("gguf"+bt.name+"midx", 1)
		}
	}
}

// legacyMatVecAVX2 generates matVec{Q4_1,Q5_0,Q5_1,IQ4_NL}AVX2: one row at
// a time, one block (one ymm) per step, as blockMatVecAVX2. The nibbles
// become: unsigned q (Q4_1, Q5_1: VPMADDUBSW of q with x); q - 16 (Q5_0)
// or the table's value (IQ4_NL), signed, multiplied as blockMatVecAVX2
// multiplies Q4_0's and Q8_0's (|x| with the weight's sign moved onto it,
// or |w| with w's sign moved onto x: the int16 pair sums stay below
// 2*127*127). The fifth bits are spread to bytes by VPSHUFB, an OR with
// every other bit and a compare with all ones. The minima go into a
// scalar accumulator added to the row's sum at the end.
func legacyMatVecAVX2(bt *blockType) {
	name := "matVec" + bt.name + "AVX2"
	sig := "func(out []float32, w []byte, xq []int8, xs []float32)"
	if bt.min {
		sig = "func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name + " computes out[r] = row r of w · x; see internal/kernels/blocks_legacy_amd64.go.")
	rows := Load(Param("out").Len(), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("done"))
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	ones := YMM()
	VPCMPEQW(ones, ones, ones)
	VPSRLW(U8(15), ones, ones)
	lo := broadcastByte(0x0f, false)
	var sixteen, shuf, mask, all, table VecVirtual
	if bt.qh != 0 || bt.c == 16 {
		sixteen = broadcastByte(16, false)
	}
	if bt.qh != 0 {
		shuf, mask, all = YMM(), YMM(), YMM()
		VMOVDQU(bitsShuf, shuf)
		VMOVDQU(bitsMask, mask)
		VPCMPEQB(all, all, all)
	}
	if bt.table {
		table = YMM()
		VBROADCASTI128(iq4nlSigned, table)
	}
	xp, xsp, cnt := GP64(), GP64(), GP64()
	var xsump GPVirtual
	if bt.min {
		xsump = GP64()
	}

	Label("row")
	Load(Param("xq").Base(), xp)
	Load(Param("xs").Base(), xsp)
	if bt.min {
		Load(Param("xsum").Base(), xsump)
	}
	Load(Param("xq").Len(), cnt)
	SHRQ(U8(5), cnt)
	acc := YMM()
	VXORPS(acc, acc, acc)
	var accMin VecVirtual
	if bt.min {
		accMin = XMM()
		VXORPS(accMin, accMin, accMin)
	}
	TESTQ(cnt, cnt)
	JZ(LabelRef("sum"))
	Label("block")
	x := YMM()
	VMOVDQU(Mem{Base: xp}, x)
	w, h := YMM(), YMM()
	VBROADCASTI128(Mem{Base: wp, Disp: bt.qs}, w)
	VPSRLW(U8(4), w, h)
	VPBLENDD(U8(0xf0), h, w, w) // [qs | qs>>4]
	VPAND(lo, w, w)
	if bt.qh != 0 {
		b := YMM()
		VPBROADCASTD(Mem{Base: wp, Disp: bt.qh}, b)
		VPSHUFB(shuf, b, b)
		VPOR(mask, b, b)
		VPCMPEQB(all, b, b) // 0xff where value i's bit is set
		VPAND(sixteen, b, b)
		VPOR(b, w, w)
	}
	switch {
	case bt.min: // unsigned q times x
		VPMADDUBSW(x, w, w)
	case bt.table: // |w| times x with w's sign
		VPSHUFB(w, table, w)
		xa := YMM()
		VPSIGNB(w, x, xa)
		VPABSB(w, w)
		VPMADDUBSW(xa, w, w)
	default: // Q5_0: q-16 with x's sign, times |x|
		VPSUBB(sixteen, w, w)
		xa := YMM()
		VPABSB(x, xa)
		VPSIGNB(x, w, w)
		VPMADDUBSW(w, xa, w)
	}
	VPMADDWD(ones, w, w)
	f := YMM()
	VCVTDQ2PS(w, f)
	d := XMM()
	VPBROADCASTW(Mem{Base: wp}, d)
	df := YMM()
	VCVTPH2PS(d, df)
	xsv := YMM()
	VBROADCASTSS(Mem{Base: xsp}, xsv)
	VMULPS(xsv, df, df)
	VFMADD231PS(df, f, acc)
	if bt.min {
		m, s := XMM(), XMM()
		VPBROADCASTW(Mem{Base: wp, Disp: 2}, m)
		VCVTPH2PS(m, m)
		VMULSS(xsv.AsX(), m, m)
		VMOVD(Mem{Base: xsump}, s)
		VCVTDQ2PS(s, s)
		VFMADD231SS(m, s, accMin)
		ADDQ(U8(4), xsump)
	}
	ADDQ(U8(32), xp)
	ADDQ(U8(4), xsp)
	ADDQ(U8(bt.bytes), wp)
	DECQ(cnt)
	JNZ(LabelRef("block"))

	Label("sum")
	s := hsum1(acc)
	if bt.min {
		VADDSS(accMin, s, s)
	}
	VMOVSS(s, Mem{Base: op})
	ADDQ(U8(4), op)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}
