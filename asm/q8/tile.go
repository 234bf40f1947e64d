package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// bcastTokens is the VPERMD index that repeats dword t of an xmm across
// 128-bit lane t of a zmm: lane t*4+r of a tile holds token t, row r.
var bcastTokens Mem

// vnniTile generates matMatQ8x4x4VNNI, the batched (prompt) kernel: tiles
// of 4 rows by 4 tokens, for group sizes that are multiples of 64.
//
// The matrix-vector kernels apply the sign of x to the weights, which costs
// an operation per row and token. Here the weights are made unsigned once
// per load instead: w+128 (an XOR with 0x80) times x gives w*x + 128*x, and
// the caller passes 128*(sum of the group of x) to subtract from the int32
// sum, which stays exact (it also gets w = -128 right). Per 64 bytes of a
// group the tile does 4 XORs and 16 VPDPBUSD, then per group one fold of
// the 16 accumulators into a zmm whose 128-bit lane t holds tokens t's four
// row sums, and one vector of float work for all 16: convert, times the
// rows' weight scales, times the tokens' activation scales, plus the
// running totals. That is the plain loop's order of roundings for each of
// the 16 results, so they are bit-identical to it.
//
// The scales come transposed by the caller, four floats per group: wsT
// (the 4 rows' scales of group g at 16*g) and, per tile of tokens, xsT and
// xcT (the 4 tokens' scales and corrections of group g at 16*g).
func vnniTile() {
	TEXT("matMatQ8x4x4VNNI", NOSPLIT, "func(out []float32, w []int8, wsT []float32, x []int8, xsT []float32, xcT []int32, n, m, ng, steps, tiles int)")
	Doc("matMatQ8x4x4VNNI computes tiles of 4 rows by 4 tokens of a batched",
		"Q8_0 product; see model/kernels_q8_amd64.go.")
	tiles := Load(Param("tiles"), GP64())
	TESTQ(tiles, tiles)
	JZ(LabelRef("done"))
	n := Load(Param("n"), GP64())
	n3 := GP64()
	LEAQ(Mem{Base: n, Index: n, Scale: 2}, n3)
	xt := Load(Param("x").Base(), GP64())
	xsT := Load(Param("xsT").Base(), GP64())
	xcT := Load(Param("xcT").Base(), GP64())
	op := Load(Param("out").Base(), GP64())

	bias := ZMM()
	t32 := GP32()
	MOVL(U32(0x80808080), t32)
	VPBROADCASTD(t32, bias)
	perm := ZMM()
	VMOVDQU32(bcastTokens, perm)

	wp, xp, sg, gleft, cnt := GP64(), GP64(), GP64(), GP64(), GP64()
	at := func(base Register, r, off int) Mem {
		switch r {
		case 0:
			return Mem{Base: base, Disp: off}
		case 1:
			return Mem{Base: base, Index: n, Scale: 1, Disp: off}
		case 2:
			return Mem{Base: base, Index: n, Scale: 2, Disp: off}
		}
		return Mem{Base: base, Index: n3, Scale: 1, Disp: off}
	}

	Label("tile")
	total := ZMM()
	VXORPS(total, total, total)
	Load(Param("w").Base(), wp)
	Load(Param("wsT").Base(), sg)
	MOVQ(xt, xp)
	Load(Param("ng"), gleft)

	Label("group")
	var acc [4][4]VecVirtual // [token][row]
	for t := range acc {
		for r := range acc[t] {
			acc[t][r] = ZMM()
			VPXORD(acc[t][r], acc[t][r], acc[t][r])
		}
	}
	Load(Param("steps"), cnt)
	Label("step")
	var wv [4]VecVirtual
	for r := range wv {
		wv[r] = ZMM()
		VPXORD(at(wp, r, 0), bias, wv[r])
	}
	for t := range acc {
		xv := ZMM()
		VMOVDQU64(at(xp, t, 0), xv)
		for r := range wv {
			vpdpbusd(xv, wv[r], acc[t][r])
		}
	}
	ADDQ(U8(64), wp)
	ADDQ(U8(64), xp)
	DECQ(cnt)
	JNZ(LabelRef("step"))

	Comment("Fold each token's four rows into [r0 r1 r2 r3] per 128-bit lane,",
		"then add the 128-bit lanes so that lane t holds token t's sums.")
	var f [4]VecVirtual
	for t := range acc {
		f[t] = fold4(acc[t], true)
	}
	half := func(a, b VecVirtual) VecVirtual {
		lo := ZMM()
		VSHUFI32X4(U8(0x44), b, a, lo) // [a0 a1 b0 b1]
		VSHUFI32X4(U8(0xee), b, a, a)  // [a2 a3 b2 b3]
		VPADDD(a, lo, lo)              // [a02 a13 b02 b13]
		return lo
	}
	f01, f23 := half(f[0], f[1]), half(f[2], f[3])
	s := ZMM()
	VSHUFI32X4(U8(0x88), f23, f01, s)   // [f01_0 f01_2 f23_0 f23_2]
	VSHUFI32X4(U8(0xdd), f23, f01, f01) // [f01_1 f01_3 f23_1 f23_3]
	VPADDD(f01, s, s)

	Comment("Exact int32 group sums, then the plain loop's float steps.")
	Comment("(16-byte loads: a 64-byte VPERMD source would read past the slices.)")
	c := ZMM()
	VMOVDQU32(Mem{Base: xcT}, c.AsX())
	VPERMD(c, perm, c)
	VPSUBD(c, s, s)
	fl := ZMM()
	VCVTDQ2PS(s, fl)
	ws := ZMM()
	VBROADCASTF32X4(Mem{Base: sg}, ws)
	VMULPS(ws, fl, fl)
	xs := ZMM()
	VMOVUPS(Mem{Base: xsT}, xs.AsX())
	VPERMD(xs, perm, xs)
	VMULPS(xs, fl, fl)
	VADDPS(fl, total, total)
	ADDQ(U8(16), sg)
	ADDQ(U8(16), xsT)
	ADDQ(U8(16), xcT)
	DECQ(gleft)
	JNZ(LabelRef("group"))

	Comment("Store lane t to out[t*m : t*m+4].")
	m4 := Load(Param("m"), GP64())
	SHLQ(U8(2), m4)
	VMOVUPS(total.AsX(), Mem{Base: op})
	for t := 1; t < 4; t++ {
		x := XMM()
		VEXTRACTF32X4(U8(t), total, x)
		ADDQ(m4, op)
		VMOVUPS(x, Mem{Base: op})
	}
	ADDQ(m4, op)
	Comment("The next tile: 4 tokens further in x.")
	LEAQ(Mem{Base: xt, Index: n, Scale: 4}, xt)
	DECQ(tiles)
	JNZ(LabelRef("tile"))

	Label("done")
	VZEROUPPER()
	RET()
}
