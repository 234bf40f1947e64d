package main

import (
	"github.com/mmcloughlin/avo/gotypes"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// bcastTokens is the VPERMD index that repeats dword t of an xmm across
// 128-bit lane t of a zmm: lane t*4+r of a tile holds token t, row r.
var bcastTokens Mem

// vnniTile generates the batched (prompt) kernels: tiles of 4 rows by 4
// tokens, matMatQ8x4x4VNNI for group sizes that are multiples of 64 and
// matMatQ8x4x4VNNI32 for gs = 32.
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
//
// With gs = 32 a 64-byte step holds two groups, g in the low 256 bits and
// g+1 in the high: the fold then splits the 128-bit lanes into two vectors
// of sums, and g's are scaled and added before g+1's. An odd last group
// takes a 32-byte step whose high half is zero.
func vnniTile() {
	tile("matMatQ8x4x4VNNI", false)
	tile("matMatQ8x4x4VNNI32", true)
}

func tile(name string, gs32 bool) {
	TEXT(name, NOSPLIT, "func(out []float32, w []int8, wsT []float32, x []int8, xsT []float32, xcT []int32, n, m, ng, steps, tiles int)")
	Doc(name+" computes tiles of 4 rows by 4 tokens of a batched Q8_0",
		"product; see internal/kernels/q8_amd64.go.")
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
	at := func(base Register, r int) Mem {
		switch r {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: n, Scale: 1}
		case 2:
			return Mem{Base: base, Index: n, Scale: 2}
		}
		return Mem{Base: base, Index: n3, Scale: 1}
	}
	total := ZMM()

	// products accumulates one step of 64 bytes (32 with half: the high
	// halves of the registers are then zero) into fresh accumulators.
	var acc [4][4]VecVirtual // [token][row]
	zeroAcc := func() {
		for t := range acc {
			for r := range acc[t] {
				acc[t][r] = ZMM()
				VPXORD(acc[t][r], acc[t][r], acc[t][r])
			}
		}
	}
	// With gs = 32, x and w are loaded under a byte mask: all ones, or the
	// low 32 bytes for the half step of an odd last group. The high half of
	// x is then zero, and that of w+128 is 0x80s, whose products add nothing.
	var mask, low32, ones, mk Register
	if gs32 {
		mask, low32, ones, mk = K(), GP64(), GP64(), GP64()
		MOVQ(U32(0xffffffff), low32)
		MOVQ(I32(-1), ones)
	}
	products := func() {
		var wv [4]VecVirtual
		for r := range wv {
			wv[r] = ZMM()
			if gs32 {
				VMOVDQU8_Z(at(wp, r), mask, wv[r])
				VPXORD(wv[r], bias, wv[r])
			} else {
				VPXORD(at(wp, r), bias, wv[r])
			}
		}
		for t := range acc {
			xv := ZMM()
			if gs32 {
				VMOVDQU8_Z(at(xp, t), mask, xv)
			} else {
				VMOVDQU64(at(xp, t), xv)
			}
			for r := range wv {
				vpdpbusd(xv, wv[r], acc[t][r])
			}
		}
		ADDQ(U8(64), wp)
		ADDQ(U8(64), xp)
	}
	// folded folds each token's four rows into [r0 r1 r2 r3] per 128-bit
	// lane.
	folded := func() [4]VecVirtual {
		var f [4]VecVirtual
		for t := range acc {
			f[t] = fold4(acc[t], true)
		}
		return f
	}
	// scaleAdd subtracts the corrections from the int32 sums s (lane
	// t*4+r: token t, row r), scales them and adds them to total, then
	// moves to the next group's scales.
	scaleAdd := func(s VecVirtual) {
		Comment("Exact int32 group sums, then the plain loop's float steps",
			"(16-byte loads: a 64-byte VPERMD source would read past the slices).")
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
	}

	Label("tile")
	VXORPS(total, total, total)
	Load(Param("w").Base(), wp)
	Load(Param("wsT").Base(), sg)
	MOVQ(xt, xp)
	Load(Param("ng"), gleft)

	if !gs32 {
		Label("group")
		zeroAcc()
		Load(Param("steps"), cnt)
		Label("step")
		products()
		DECQ(cnt)
		JNZ(LabelRef("step"))

		Comment("Fold, then add the 128-bit lanes so that lane t holds token t's sums.")
		f := folded()
		f01 := shufAdd(0x44, 0xee, f[0], f[1]) // [f0_02 f0_13 f1_02 f1_13]
		f23 := shufAdd(0x44, 0xee, f[2], f[3])
		s := shufAdd(0x88, 0xdd, f01, f23) // [f0 f1 f2 f3]
		scaleAdd(s)
		DECQ(gleft)
		JNZ(LabelRef("group"))
	} else {
		// pair splits the folds of a two-group step into the sums of group
		// g (128-bit lanes 0 and 1 of each fold) and of g+1 (lanes 2, 3).
		pair := func() (VecVirtual, VecVirtual) {
			f := folded()
			ab := shufAdd(0x88, 0xdd, f[0], f[1]) // [a_g a_g1 b_g b_g1]
			cd := shufAdd(0x88, 0xdd, f[2], f[3])
			g := ZMM()
			VSHUFI32X4(U8(0x88), cd, ab, g)  // [a_g b_g c_g d_g]
			VSHUFI32X4(U8(0xdd), cd, ab, ab) // [a_g1 b_g1 c_g1 d_g1]
			return g, ab
		}
		Label("pair")
		MOVQ(ones, mk)
		CMPQ(gleft, U8(1))
		CMOVQEQ(low32, mk)
		KMOVQ(mk, mask)
		zeroAcc()
		products()
		g, g1 := pair()
		scaleAdd(g)
		SUBQ(U8(2), gleft)
		JS(LabelRef("store"))
		scaleAdd(g1)
		TESTQ(gleft, gleft)
		JNZ(LabelRef("pair"))
	}

	Label("store")
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

// shufAdd adds two selections of the 128-bit lanes of a and b (b is
// clobbered): lanes lo and hi each take two lanes of a, then two of b, by
// VSHUFI32X4 immediates (0x44 and 0xee pair lanes 0+2 and 1+3 within each
// register; 0x88 and 0xdd pair lanes 0+1 and 2+3).
func shufAdd(lo, hi uint8, a, b VecVirtual) VecVirtual {
	x := ZMM()
	VSHUFI32X4(U8(lo), b, a, x)
	VSHUFI32X4(U8(hi), b, a, b)
	VPADDD(b, x, x)
	return x
}

// addr resolves a parameter to its memory operand.
func addr(c interface {
	Resolve() (*gotypes.Basic, error)
}) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}
