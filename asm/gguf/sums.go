package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # The file's layout by the panels' arithmetic (Q8_0, Q4_0, Q5_0, IQ4_NL)
//
// The batched products of these types run on panels (panel.go), whose
// arithmetic per row and vector is, block by block,
//
//	total = fma(float32(isum_b) * d_b, xs_b, total)
//
// with isum_b the block's exact int32 sum. For a row to get that value
// alone too (batch invariance: a position's logits must not depend on the
// batch it is computed in), the matrix-vector kernels of the file's
// layout compute the same: blockSumsVNNI. As the lane kernels (blocks.go)
// they take 4 rows a quarter apart, two blocks a step, and VPDPBUSD each
// row's unpacked bytes into 16 dword lanes (block A in lanes 0-7, block B
// in 8-15); then, instead of converting the lanes to float, a transpose of
// the 4 rows' lanes adds them into the 8 block sums [A0..A3 | B0..B3], which
// take their d (the rows' 8 float16, gathered into one xmm), one
// conversion, one product and, per block, one FMA with its xs into the 4
// rows' totals: the float work of 4 rows in one ymm.
//
// The last rows%4 go through the same code with row 0 in every place.

// blockSumsVNNI generates matVec{T}SumsVNNI.
func blockSumsVNNI(bt *blockType) {
	name := "matVec" + bt.name + "SumsVNNI"
	TEXT(name, NOSPLIT, "func(out []float32, w []byte, xq []int8, xs []float32)")
	Doc(name + " computes out[r] = row r of w · x by the panel kernels' arithmetic; see internal/kernels/blocks_tile_amd64.go.")
	rows := Load(Param("out").Len(), GP64())
	op := Load(Param("out").Base(), GP64())
	wrow := Load(Param("w").Base(), GP64())
	nb := Load(Param("xq").Len(), GP64())
	SHRQ(U8(5), nb)
	rb := GP64()
	IMUL3Q(U32(bt.bytes), nb, rb)
	u := newUnpacker(bt)
	wp, xp, xsp, cnt := GP64(), GP64(), GP64(), GP64()
	var dIdx01, dIdx VecVirtual
	if bt.q4 {
		dIdx01, dIdx = ZMM(), ZMM()
		VMOVDQU64(bt.dPair, dIdx01)
		VMOVDQU64(sumsDIdx, dIdx)
	}

	ra := newRowsApart(rows, rb)
	for _, R := range []int{4, 1} {
		l := func(s string) string { return fmt.Sprintf("r%d%s", R, s) }
		var stride, stride3 gpr = rb, rb
		if R == 4 {
			stride, stride3 = ra.qrb, ra.qrb3
		}
		ra.begin(R, rows, wrow, op, l("end"))
		Label(l("rows"))
		MOVQ(wrow, wp)
		Load(Param("xq").Base(), xp)
		Load(Param("xs").Base(), xsp)
		tot := XMM()
		VXORPS(tot, tot, tot)
		row := func(r int, off int) Mem {
			if R == 1 {
				r = 0
			}
			return rowAt(wp, stride, stride3, r, off)
		}
		step := func(single bool) {
			x, cx := u.sumsActivation(xp, single)
			var s, raw [4]VecVirtual
			for r := range R {
				if !single && prefetchDist > 0 {
					PREFETCHT0(row(r, prefetchDist))
				}
				w, rw := u.unpack(row(r, 0), single)
				s[r], raw[r] = ZMM(), rw
				if cx != nil {
					VMOVDQA64(cx, s[r])
				} else {
					zeroFrom(u.zero, s[r])
				}
				vpdpbusd(x, w, s[r])
			}
			for r := R; r < 4; r++ {
				s[r], raw[r] = s[0], raw[0]
			}
			g := blockSums(s)
			Comment("The rows' d: [A0..A3 | B0..B3] as float16, then float32.")
			var dh Register
			if bt.q4 {
				p01, p23 := ZMM(), ZMM()
				VMOVDQA64(raw[0], p01)
				VPERMT2W(raw[1], dIdx01, p01) // [A0 A1 B0 B1 ...]
				VMOVDQA64(raw[2], p23)
				VPERMT2W(raw[3], dIdx01, p23)
				VPERMT2W(p23, dIdx, p01) // [A0 A1 A2 A3 B0 B1 B2 B3 ...]
				dh = p01.AsX()
			} else {
				dh = XMM()
				VPXORD(dh, dh, dh)
				for r := range 4 {
					VPINSRW(U8(r), row(r, 0), dh, dh)
					if !single {
						VPINSRW(U8(4+r), row(r, bt.bytes), dh, dh)
					}
				}
			}
			df := YMM()
			VCVTPH2PS(dh, df)
			f := YMM()
			VCVTDQ2PS(g, f)
			VMULPS(df, f, f)
			xa := XMM()
			VBROADCASTSS(Mem{Base: xsp}, xa)
			VFMADD231PS(xa, f.AsX(), tot)
			if !single {
				fb, xb := XMM(), XMM()
				VEXTRACTF32X4(U8(1), f, fb)
				VBROADCASTSS(Mem{Base: xsp, Disp: 4}, xb)
				VFMADD231PS(xb, fb, tot)
			}
		}
		MOVQ(nb, cnt)
		SHRQ(U8(1), cnt)
		JZ(LabelRef(l("single")))
		Label(l("loop"))
		step(false)
		ADDQ(U8(64), xp)
		ADDQ(U8(8), xsp)
		ADDQ(U8(2*bt.bytes), wp)
		DECQ(cnt)
		JNZ(LabelRef(l("loop")))
		Label(l("single"))
		TESTQ(U32(1), nb)
		JZ(LabelRef(l("store")))
		step(true)

		Label(l("store"))
		if R == 4 {
			ra.store(tot, op)
			ADDQ(rb, wrow)
			ADDQ(U8(4), op)
			DECQ(ra.q)
		} else {
			VMOVSS(tot, Mem{Base: op})
			ADDQ(rb, wrow)
			ADDQ(U8(4), op)
			DECQ(rows)
		}
		JNZ(LabelRef(l("rows")))
		Label(l("end"))
	}
	VZEROUPPER()
	RET()
}

// sumsActivation loads the step of x at xp (the low half only with single)
// and its lanes' corrections, -c times the sum of each 4 bytes (none when
// c is 0).
func (u *unpacker) sumsActivation(xp gpr, single bool) (x, cx VecVirtual) {
	x = ZMM()
	if single {
		zeroFrom(u.zero, x)
		VMOVDQU64(Mem{Base: xp}, x.AsY())
	} else {
		VMOVDQU64(Mem{Base: xp}, x)
	}
	if u.bt.c != 0 {
		cx = ZMM()
		zeroFrom(u.zero, cx)
		vpdpbusd(x, u.c, cx)
		VPSUBD(cx, u.zero, cx)
	}
	return x, cx
}

// blockSums adds the 16 dword lanes of each of 4 rows (lanes 0-7 block A,
// 8-15 block B) into a ymm [A0 A1 A2 A3 | B0 B1 B2 B3]: exact int32 sums,
// in any order.
func blockSums(s [4]VecVirtual) VecVirtual {
	pair := func(a, b VecVirtual) VecVirtual {
		lo, hi := ZMM(), ZMM()
		VPUNPCKLDQ(b, a, lo) // [a0 b0 a1 b1] per 128-bit lane
		VPUNPCKHDQ(b, a, hi) // [a2 b2 a3 b3]
		VPADDD(hi, lo, lo)   // [a02 b02 a13 b13]
		return lo
	}
	ab, cd := pair(s[0], s[1]), pair(s[2], s[3])
	lo, hi := ZMM(), ZMM()
	VPUNPCKLQDQ(cd, ab, lo) // [a02 b02 c02 d02]
	VPUNPCKHQDQ(cd, ab, hi) // [a13 b13 c13 d13]
	VPADDD(hi, lo, lo)      // per 128-bit lane q: the 4 rows' sums of q
	e, f := ZMM(), ZMM()
	VSHUFI64X2(U8(0x88), lo, lo, e) // [q0 q2 q0 q2]
	VSHUFI64X2(U8(0xdd), lo, lo, f) // [q1 q3 q1 q3]
	VPADDD(f, e, e)                 // [A | B | A | B]
	return e.AsY().(VecVirtual)
}

// sumsDIdx is the VPERMT2W index over [p01 | p23] (each [A_r A_r' B_r
// B_r'] in words 0-3) giving [A0 A1 A2 A3 B0 B1 B2 B3] in words 0-7.
var sumsDIdx Mem

// sumsData writes sumsDIdx and each nibble type's dPair: the VPERMT2W
// index over the raw blocks of two rows [raw0 | raw1] giving [A0 A1 B0 B1]
// (d of block A at word 0, of block B at word bytes/2).
func sumsData() {
	sumsDIdx = GLOBL("ggufsumsdidx", RODATA|NOPTR)
	for i, w := range []uint16{0, 1, 32, 33, 2, 3, 34, 35} {
		DATA(2*i, U16(w))
	}
	for _, bt := range []*blockType{q4, q50, iq4nl} {
		bt.dPair = GLOBL("gguf"+bt.name+"dpair", RODATA|NOPTR)
		b := uint16(bt.bytes / 2)
		for i, w := range []uint16{0, 32, b, 32 + b} {
			DATA(2*i, U16(w))
		}
	}
}
