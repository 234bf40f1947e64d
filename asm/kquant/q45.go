package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// q45 generates the Q4_K (blockBytes 144) or Q5_K (176) kernel for blocks
// of r rows.
func q45(name string, blockBytes, r int) {
	q5 := blockBytes == 176
	name += []string{"", "x1", "", "", "x4"}[r] + "VNNI"
	k := prologue(name, blockBytes, r, false)
	k.blockStart()

	Comment("Shared by the rows: the activation in the nibbles' order, its",
		"scales in the packed sums' lane order, and xs_j*xsum_j for the mins.")
	var x [4]VecVirtual // [x0..31 | x64..95], [x32..63 | x96..127], then +128
	for i := range x {
		v := ZMM()
		base := 128*(i/2) + 32*(i%2)
		zero(v) // (for avo: all of the zmm is set)
		VMOVDQU(Mem{Base: k.xp, Disp: base}, v.AsY())
		VINSERTI64X4(U8(1), Mem{Base: k.xp, Disp: base + 64}, v, v)
		x[i] = v
	}
	xsy, xs0, xs1 := k.xsVectors("q45",
		[]uint32{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3},
		[]uint32{4, 4, 5, 5, 4, 4, 5, 5, 6, 6, 7, 7, 6, 6, 7, 7})
	xm := YMM()
	zero(xm.AsZ())
	VCVTDQ2PS(Mem{Base: k.xsump}, xm)
	VMULPS(xsy, xm, xm)

	for i := range r {
		Comment("Row " + string(rune('0'+i)) + ".")
		u := unpack45(func(off int) Mem { return k.row(i, off) }, q5)
		VMULPS(xm.AsZ(), u.mf, u.mf)
		v, sc0, sc1, d, dmin, mf := u.v, u.sc0, u.sc1, u.d, u.dmin, u.mf
		var a [4]VecVirtual
		for j := range a {
			a[j] = ZMM()
			zero(a[j])
			vpdpbusd(x[j], v[j], a[j])
		}
		scaleSums(a, sc0, sc1, xs0, xs1, d, k.acc[i])
		VFNMADD231PS(mf, dmin, k.acc[i])
	}
	k.next()
	k.blockEnd()
}

// unpacked45 is a Q4_K or Q5_K super-block of one row, unpacked.
type unpacked45 struct {
	v        [4]VecVirtual // quants of sub-blocks [0|2], [1|3], [4|6], [5|7]
	sc0, sc1 VecVirtual    // scale words in the packed sums' order
	d, dmin  VecVirtual    // broadcast
	mf       VecVirtual    // the 8 mins as floats, lanes 8-15 zero
}

// unpack45 unpacks the super-block whose byte off row(off) addresses.
func unpack45(row func(off int) Mem, q5 bool) unpacked45 {
	var u unpacked45
	tb := unpackScales(row(4))
	u.sc0, u.sc1 = ZMM(), ZMM()
	VPSHUFB(c("sc0", func() []byte { return scaleIndex(8, 9, 10, 11) }), tb, u.sc0)
	VPSHUFB(c("sc1", func() []byte { return scaleIndex(12, 13, 14, 15) }), tb, u.sc1)
	mf := YMM()
	zero(mf.AsZ()) // (for avo: all of the zmm is set)
	VPMOVZXBD(tb.AsX(), mf)
	VCVTDQ2PS(mf, mf)
	u.mf = mf.AsZ().(VecVirtual)
	dd := YMM()
	u.d, u.dmin = ZMM(), ZMM()
	VPBROADCASTD(row(0), dd)
	VCVTPH2PS(dd, u.d) // [d dmin d dmin ...]
	VMOVSHDUP(u.d, u.dmin)
	VMOVSLDUP(u.d, u.d)

	m0f := c("m0f", func() []byte { return repeat(64, 0x0f) })
	qs := 16
	if q5 {
		qs = 48
	}
	q0, q1 := ZMM(), ZMM()
	VMOVDQU64(row(qs), q0)
	VMOVDQU64(row(qs+64), q1)
	for j, q := range []VecVirtual{q0, q1} {
		lo, hi := ZMM(), ZMM()
		VPANDD(m0f, q, lo)
		VPSRLW(U8(4), q, hi)
		VPANDD(m0f, hi, hi)
		u.v[2*j], u.v[2*j+1] = lo, hi
	}
	if q5 {
		// (A VPTESTMB and a masked VPADDB per vector ran at the same speed,
		// 52 µs against 40-59 µs for Q5_K 512x2048, and need mask registers.)
		Comment("Fifth bits: sub-block j's is bit j of qh[l], shifted to bit 4.")
		qh := ZMM()
		VBROADCASTI64X4(row(16), qh)
		c16 := c("c16", func() []byte { return repeat(64, 16) })
		for j := range u.v {
			// Bits lo (low 256 bits of v) and hi (high): a word shift by
			// 4-lo and 4-hi puts them at bit 4 of their bytes.
			lo, hi := [4]int{0, 1, 4, 5}[j], [4]int{2, 3, 6, 7}[j]
			left := lo < 4
			count := func(b int) byte {
				if left {
					return byte(4 - b)
				}
				return byte(b - 4)
			}
			sh := c("q5sh"+string(rune('0'+j)), func() []byte {
				return append(repeat(16, count(lo), 0), repeat(16, count(hi), 0)...)
			})
			t := ZMM()
			if left {
				VPSLLVW(sh, qh, t)
			} else {
				VPSRLVW(sh, qh, t)
			}
			VPTERNLOGD(U8(0xf8), c16, t, u.v[j]) // v |= t & 16
		}
	}
	return u
}

// scaleIndex is the VPSHUFB index that spreads scale bytes a, b (128-bit
// lanes 0 and 1) and c, d (lanes 2 and 3) to the words of the packed sums:
// [a a a a b b b b] in lanes 0 and 1, [c c c c d d d d] in lanes 2 and 3.
func scaleIndex(a, b, c, d byte) []byte {
	lane := func(p, q byte) []byte {
		return append(repeat(4, p, z), repeat(4, q, z)...)
	}
	out := append(lane(a, b), lane(a, b)...)
	return append(append(out, lane(c, d)...), lane(c, d)...)
}

// unpackScales unpacks the 12 bytes b0..b11 of 6-bit scales and mins at src
// (get_scale_min_k4) into each 128-bit lane of a zmm [m0..m7 | sc0..sc7]:
//
//	sc_j = b_j & 63, m_j = b_{j+4} & 63                            (j < 4)
//	sc_j = b_{j+4}&15 | b_{j-4}>>6<<4, m_j = b_{j+4}>>4 | b_j>>6<<4 (j >= 4)
//
// One VPSHUFB gathers the low parts' bytes (m: b4..7, b8..11; sc: b0..3,
// b8..11), a dword shift by 4 takes the high nibbles for m4..7, the other
// VPSHUFB gathers the bytes whose top 2 bits complete m4..7 and sc4..7.
func unpackScales(src Mem) VecVirtual {
	s, a, b := ZMM(), ZMM(), ZMM()
	VBROADCASTI32X4(src, s)
	VPSHUFB(c("ia", func() []byte { return repeat(4, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11) }), s, a)
	VPSHUFB(c("ib", func() []byte { return repeat(4, z, z, z, z, 4, 5, 6, 7, z, z, z, z, 0, 1, 2, 3) }), s, b)
	VPSRLVD(c("sha", func() []byte { return dwords(0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0) }), a, a)
	VPSRLD(U8(2), b, b)
	VPANDD(c("m30", func() []byte { return repeat(64, 0x30) }), b, b)
	// a = a&m1 | b, m1 keeping 6 bits of the low parts and 4 of the others.
	VPTERNLOGD(U8(0xec), c("m1", func() []byte { return repeat(8, 63, 63, 63, 63, 15, 15, 15, 15) }), b, a)
	return a
}
