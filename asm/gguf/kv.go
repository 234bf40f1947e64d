package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # The KV cache's rows (model/kvcache.go)
//
// A session's keys and values may be kept in float16 or in Q8_0 blocks.
// Attention widens a block of a head's positions at a time into float32
// (the rows of hs values of that head, contiguous), once for all the
// query heads that read it, then runs the float32 kernels over them.

// dequantRowsF16 generates dequantRowsF16AVX512 / AVX2: rows of cols halves
// stride halves apart into rows of cols floats, 16 (8) at a time, the last
// cols%16 (%8) through a masked load (AVX-512) or left to the Go driver
// (AVX2).
func dequantRowsF16(zmm bool) {
	name := "dequantRowsF16AVX2"
	lanes := 8
	if zmm {
		name, lanes = "dequantRowsF16AVX512", 16
	}
	TEXT(name, NOSPLIT, "func(dst []float32, src []uint16, rows, cols, stride int)")
	Doc(name + " widens rows of float16; see internal/kernels/kvcache_amd64.go.")
	rows := Load(Param("rows"), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("done"))
	dp := Load(Param("dst").Base(), GP64())
	sp := Load(Param("src").Base(), GP64())
	cols := Load(Param("cols"), GP64())
	stride := Load(Param("stride"), GP64())
	SHLQ(U8(1), stride)
	full := GP64()
	MOVQ(cols, full)
	SHRQ(U8(map[int]uint8{8: 3, 16: 4}[lanes]), full)
	var k Register
	if zmm {
		rem := GP64()
		MOVQ(cols, rem)
		ANDQ(U8(15), rem)
		k = K()
		maskLow(rem, k)
	}
	rowBytes := GP64() // bytes of a dst row
	MOVQ(cols, rowBytes)
	SHLQ(U8(2), rowBytes)
	s, d, cnt := GP64(), GP64(), GP64()

	Label("row")
	MOVQ(sp, s)
	MOVQ(dp, d)
	MOVQ(full, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tail"))
	Label("loop")
	if zmm {
		v := ZMM()
		VCVTPH2PS(Mem{Base: s}, v)
		VMOVUPS(v, Mem{Base: d})
	} else {
		v := YMM()
		VCVTPH2PS(Mem{Base: s}, v)
		VMOVUPS(v, Mem{Base: d})
	}
	ADDQ(U8(2*lanes), s)
	ADDQ(U8(4*lanes), d)
	DECQ(cnt)
	JNZ(LabelRef("loop"))
	Label("tail")
	if zmm {
		h, v := YMM(), ZMM()
		VMOVDQU16_Z(Mem{Base: s}, k, h)
		VCVTPH2PS(h, v)
		VMOVUPS(v, k, Mem{Base: d}) // the masked lanes are not written
	}
	ADDQ(stride, sp)
	ADDQ(rowBytes, dp)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}

// dequantRowsQ8_0 generates dequantRowsQ8_0AVX512 / AVX2: rows of nb Q8_0
// blocks stride bytes apart into rows of 32*nb floats, d*q as
// dequantRowQ8_0 rounds it (one product).
func dequantRowsQ8_0(zmm bool) {
	name := "dequantRowsQ8_0AVX2"
	if zmm {
		name = "dequantRowsQ8_0AVX512"
	}
	TEXT(name, NOSPLIT, "func(dst []float32, src []byte, rows, nb, stride int)")
	Doc(name + " dequantizes rows of Q8_0 blocks; see internal/kernels/kvcache_amd64.go.")
	rows := Load(Param("rows"), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("done"))
	nb := Load(Param("nb"), GP64())
	TESTQ(nb, nb)
	JZ(LabelRef("done"))
	dp := Load(Param("dst").Base(), GP64())
	sp := Load(Param("src").Base(), GP64())
	stride := Load(Param("stride"), GP64())
	s, cnt := GP64(), GP64()

	Label("row")
	MOVQ(sp, s)
	MOVQ(nb, cnt)
	Label("block")
	if zmm {
		dh, df := YMM(), ZMM()
		VPBROADCASTW(Mem{Base: s}, dh)
		VCVTPH2PS(dh, df)
		for h := range 2 {
			v := ZMM()
			VPMOVSXBD(Mem{Base: s, Disp: 2 + 16*h}, v)
			VCVTDQ2PS(v, v)
			VMULPS(df, v, v)
			VMOVUPS(v, Mem{Base: dp, Disp: 64 * h})
		}
	} else {
		dh, df := XMM(), YMM()
		VPBROADCASTW(Mem{Base: s}, dh)
		VCVTPH2PS(dh, df)
		for h := range 4 {
			v := YMM()
			VPMOVSXBD(Mem{Base: s, Disp: 2 + 8*h}, v)
			VCVTDQ2PS(v, v)
			VMULPS(df, v, v)
			VMOVUPS(v, Mem{Base: dp, Disp: 32 * h})
		}
	}
	ADDQ(U8(34), s)
	ADDQ(U8(128), dp)
	DECQ(cnt)
	JNZ(LabelRef("block"))
	ADDQ(stride, sp)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}
