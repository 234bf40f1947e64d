package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The AVX2 kernels (AVX2, FMA and F16C's VCVTPH2PS, which every AVX2+FMA
// processor has) work on ymm, one 32-value sub-block (or, for Q6_K, one
// 32-block of two 16-value sub-blocks, one per 128-bit lane) at a time:
//
//	VPMADDUBSW  quants (unsigned bytes) times activation bytes, into words:
//	            pair sums of at most 2*63*128, which do not saturate
//	VPMADDWD    times the sub-block's scale (a word in every lane): dwords
//	VCVTDQ2PS, then times the 32-block's activation scale (a broadcast
//	            load) into the super-block's float sum, which is multiplied
//	            by d into the row's accumulator.
//
// The scales and mins are unpacked as in the VNNI kernels, on xmm, and
// written to the stack as words so that each is a VPBROADCASTW away. Two
// rows at a time, half the rows apart (see main.go, "Rows apart"), share the
// activation loads; the kernels stay within
// registers 0-15 (avo would give an EVEX encoding, which needs AVX-512, to
// higher ones: check the generated file with grep when changing them).

// q45AVX2 generates the AVX2 Q4_K (blockBytes 144) or Q5_K (176) kernel
// for blocks of r rows.
func q45AVX2(name string, blockBytes, r int) {
	q5 := blockBytes == 176
	name += []string{"", "x1", "x2"}[r] + "AVX2"
	k := prologue(name, blockBytes, r, true)
	k.blockStart()

	Comment("Shared by the rows: xs_j*xsum_j for the mins.")
	xm := YMM()
	VCVTDQ2PS(Mem{Base: k.xsump}, xm)
	VMULPS(Mem{Base: k.xsp}, xm, xm)
	qs := 16
	if q5 {
		qs = 48
	}
	m0f := c("m0f", func() []byte { return repeat(64, 0x0f) })
	words := k.sharedSlot(0)
	for i := range r {
		Comment("Row " + string(rune('0'+i)) + ".")
		t := unpackScalesX(k.row(i, 0))
		w := YMM()
		VPMOVZXBW(t, w) // [m0..m7 sc0..sc7] as words
		VMOVDQU(w, words)
		mf := YMM()
		VPMOVZXBD(t, mf)
		VCVTDQ2PS(mf, mf)
		VMULPS(xm, mf, mf)
		dd, d, dmin := XMM(), YMM(), YMM()
		VPBROADCASTD(k.row(i, 0), dd)
		VCVTPH2PS(dd, d) // [d dmin d dmin ...]
		VMOVSHDUP(d, dmin)
		VMOVSLDUP(d, d)
		VFNMADD231PS(dmin, mf, k.acc[i])

		var qh VecVirtual
		if q5 {
			qh = YMM()
			VMOVDQU(k.row(i, 16), qh)
		}
		f := YMM()
		for ch := range 4 {
			q, lo, hi := YMM(), YMM(), YMM()
			VMOVDQU(k.row(i, qs+32*ch), q)
			VPAND(m0f, q, lo)
			VPSRLW(U8(4), q, hi)
			VPAND(m0f, hi, hi)
			for h, v := range []VecVirtual{lo, hi} {
				j := 2*ch + h
				if q5 {
					Comment("Fifth bit: bit j of qh[l], moved to bit 4.")
					b := YMM()
					switch {
					case j < 4:
						VPSLLW(U8(4-j), qh, b)
					case j == 4:
						VMOVDQU(qh, b)
					default:
						VPSRLW(U8(j-4), qh, b)
					}
					VPAND(c("c16", func() []byte { return repeat(64, 16) }), b, b)
					VPOR(b, v, v)
				}
				p, s, xs := YMM(), YMM(), YMM()
				VPMADDUBSW(Mem{Base: k.xp, Disp: 32 * j}, v, p)
				VPBROADCASTW(words.Offset(2*(8+j)), s)
				VPMADDWD(s, p, p)
				VCVTDQ2PS(p, p)
				VBROADCASTSS(Mem{Base: k.xsp, Disp: 4 * j}, xs)
				if j == 0 {
					VMULPS(xs, p, f)
				} else {
					VFMADD231PS(xs, p, f)
				}
			}
		}
		VFMADD231PS(d, f, k.acc[i])
	}
	k.next()
	k.blockEnd()
}

// unpackScalesX is unpackScales on an xmm, the header at src, with VEX
// instructions only.
func unpackScalesX(src Mem) VecVirtual {
	s, a, b := XMM(), XMM(), XMM()
	VMOVDQU(src, s)
	VPSHUFB(c("ia", func() []byte { return repeat(4, scaleGather...) }), s, a)
	VPSHUFB(c("ib", func() []byte { return repeat(4, scaleTops...) }), s, b)
	VPSRLVD(c("sha", func() []byte { return dwords(0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0) }), a, a)
	VPSRLD(U8(2), b, b)
	VPAND(c("m30", func() []byte { return repeat(64, 0x30) }), b, b)
	VPAND(c("m1", func() []byte { return repeat(8, 63, 63, 63, 63, 15, 15, 15, 15) }), a, a)
	VPOR(b, a, a)
	return a
}

// q6AVX2 generates the AVX2 Q6_K kernel for blocks of r rows. Each 32-block
// j of a super-block (values 32j..32j+31; half h = j/4, quarter c = j%4) is
// ql[64h+32(c&1)+l] (low nibble for c < 2, high for c >= 2) | bits 2c, 2c+1
// of qh[32h+l] << 4; its two sub-blocks' scales are sc[2j] (low 128 bits)
// and sc[2j+1] (high). The -32 comes out of the word pair sums: the rows
// subtract 32*(x_2i + x_2i+1), computed once per super-block (|q-32| <= 32:
// the pair sums stay within 2*32*128).
func q6AVX2(r int) {
	name := "matVecQ6_K" + []string{"", "x1", "x2"}[r] + "AVX2"
	k := prologue(name, 210, r, true)
	k.blockStart()

	Comment("Shared by the rows: 32 times the activation's pair sums.")
	c32 := YMM()
	VMOVDQU(c("c32", func() []byte { return repeat(64, 32) }), c32)
	for j := range 8 {
		t := YMM()
		VPMADDUBSW(Mem{Base: k.xp, Disp: 32 * j}, c32, t)
		VMOVDQU(t, k.shared.Offset(32*j))
	}
	m0f := c("m0f", func() []byte { return repeat(64, 0x0f) })
	m30 := c("m30", func() []byte { return repeat(64, 0x30) })
	for i := range r {
		Comment("Row " + string(rune('0'+i)) + ".")
		sc, slo, shi := YMM(), YMM(), YMM()
		VPMOVSXBW(k.row(i, 192), sc)
		VPERMQ(U8(0x44), sc, slo) // [s0..s7 | s0..s7]
		VPERMQ(U8(0xee), sc, shi) // [s8..s15 | s8..s15]
		dh, d := XMM(), YMM()
		VPBROADCASTW(k.row(i, 208), dh)
		VCVTPH2PS(dh, d)
		f := YMM()
		for j := range 8 {
			h, cq := j/4, j%4
			q, hb := YMM(), YMM()
			ql := k.row(i, 64*h+32*(cq&1))
			VMOVDQU(ql, q)
			if cq >= 2 {
				VPSRLW(U8(4), q, q)
			}
			VPAND(m0f, q, q)
			qhm := k.row(i, 128+32*h)
			switch cq {
			case 0:
				VMOVDQU(qhm, hb)
				VPSLLW(U8(4), hb, hb)
			case 1:
				VMOVDQU(qhm, hb)
				VPSLLW(U8(2), hb, hb)
			case 2:
				VMOVDQU(qhm, hb)
			case 3:
				VMOVDQU(qhm, hb)
				VPSRLW(U8(2), hb, hb)
			}
			VPAND(m30, hb, hb)
			VPOR(hb, q, q)
			p, s, xs := YMM(), YMM(), YMM()
			VPMADDUBSW(Mem{Base: k.xp, Disp: 32 * j}, q, p)
			VPSUBW(k.shared.Offset(32*j), p, p)
			src := slo
			if h == 1 {
				src = shi
			}
			VPSHUFB(c("q6w"+string(rune('0'+cq)), func() []byte {
				a, b := byte(4*cq), byte(4*cq+2)
				return append(repeat(8, a, a+1), repeat(8, b, b+1)...)
			}), src, s)
			VPMADDWD(s, p, p)
			VCVTDQ2PS(p, p)
			VBROADCASTSS(Mem{Base: k.xsp, Disp: 4 * j}, xs)
			if j == 0 {
				VMULPS(xs, p, f)
			} else {
				VFMADD231PS(xs, p, f)
			}
		}
		VFMADD231PS(d, f, k.acc[i])
	}
	k.next()
	k.blockEnd()
}
