package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
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
// fit the panel kernels of batched prompts (panel.go) too. The AVX2
// kernels are blockMatVecAVX2's.

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
