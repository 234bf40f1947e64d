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
	Comment("The VPERMW index of the rows' d (words 0..15) and dmin (16..31),",
		"4 words each, from the headers' lanes.")
	dIdx := ZMM()
	VMOVDQU64(c("dIdx", func() []byte {
		var w []uint16
		for _, half := range []uint16{0, 1} {
			for lane := range uint16(4) {
				w = append(w, 8*lane+half, 8*lane+half, 8*lane+half, 8*lane+half)
			}
		}
		return words(w...)
	}), dIdx)
	k.macc = ZMM()
	k.blockStart()

	Comment("Shared by the rows: the activation in the nibbles' order, its",
		"scale, and its 8 block sums as words in each 128-bit lane.")
	var x [4]VecVirtual // [x0..31 | x64..95], [x32..63 | x96..127], then +128
	for i := range x {
		v := ZMM()
		base := 128*(i/2) + 32*(i%2)
		zero(v) // (for avo: all of the zmm is set)
		VMOVDQU(Mem{Base: k.xp, Disp: base}, v.AsY())
		VINSERTI64X4(U8(1), Mem{Base: k.xp, Disp: base + 64}, v, v)
		x[i] = v
	}
	xs := ZMM()
	VBROADCASTSS(Mem{Base: k.xsp}, xs)
	xsum, t := ZMM(), YMM()
	VMOVDQU(Mem{Base: k.xsump}, t)
	zero(xsum)
	VPMOVDW(t, xsum.AsX()) // |xsum_j| <= 32*127
	VSHUFI32X4(U8(0), xsum, xsum, xsum)

	Comment("The rows' headers, one per 128-bit lane: scales and mins, d*xs",
		"and dmin*xs; the mins' terms.")
	h := ZMM()
	if r == 1 {
		VBROADCASTI32X4(k.row(0, 0), h)
	} else {
		zero(h)
		VMOVDQU(k.row(0, 0), h.AsX())
		for i := 1; i < r; i++ {
			VINSERTI32X4(U8(i), k.row(i, 0), h, h)
		}
	}
	tb := unpackScales(h)
	dh, dhi := ZMM(), YMM()
	VPERMW(h, dIdx, dh)
	VEXTRACTI64X4(U8(1), dh, dhi)
	d, dmin := ZMM(), ZMM()
	VCVTPH2PS(dh.AsY(), d)
	VCVTPH2PS(dhi, dmin)
	VMULPS(xs, d, d)
	VMULPS(xs, dmin, dmin)
	m := ZMM()
	VPSHUFB(c("mw", func() []byte { return repeat(4, 0, z, 1, z, 2, z, 3, z, 4, z, 5, z, 6, z, 7, z) }), tb, m)
	VPMADDWD(xsum, m, m) // m_j*xsum_j, pair sums
	VCVTDQ2PS(m, m)
	VFNMADD231PS(dmin, m, k.macc)

	for i := range r {
		Comment("Row " + string(rune('0'+i)) + ".")
		dxs, ti := d, tb
		if r > 1 {
			dxs, ti = ZMM(), ZMM()
			VSHUFF32X4(U8(0x55*i), d, d, dxs) // lane i to all lanes
			VSHUFI32X4(U8(0x55*i), tb, tb, ti)
		}
		sc0, sc1 := ZMM(), ZMM()
		VPSHUFB(c("sc0", func() []byte { return scaleIndex(8, 9, 10, 11) }), ti, sc0)
		VPSHUFB(c("sc1", func() []byte { return scaleIndex(12, 13, 14, 15) }), ti, sc1)
		v := unpackQuants45(func(off int) Mem { return k.row(i, off) }, q5)
		var a [4]VecVirtual
		for j := range a {
			a[j] = ZMM()
			zero(a[j])
			vpdpbusd(x[j], v[j], a[j])
		}
		superSums(a, sc0, sc1, dxs, k.acc[i])
	}
	k.next()
	k.blockEnd()
}

// unpacked45 is a Q4_K or Q5_K super-block of one row, unpacked, for the
// tile kernels.
type unpacked45 struct {
	v        [4]VecVirtual // quants of sub-blocks [0|2], [1|3], [4|6], [5|7]
	sc0, sc1 VecVirtual    // scale words in the packed sums' order
	d, dmin  VecVirtual    // broadcast
	tb       VecVirtual    // unpackScales' [m0..m7 | sc0..sc7] in each 128-bit lane
}

// unpack45 unpacks the super-block whose byte off row(off) addresses.
func unpack45(row func(off int) Mem, q5 bool) unpacked45 {
	var u unpacked45
	h := ZMM()
	VBROADCASTI32X4(row(0), h)
	tb := unpackScales(h)
	u.sc0, u.sc1 = ZMM(), ZMM()
	VPSHUFB(c("sc0", func() []byte { return scaleIndex(8, 9, 10, 11) }), tb, u.sc0)
	VPSHUFB(c("sc1", func() []byte { return scaleIndex(12, 13, 14, 15) }), tb, u.sc1)
	u.tb = tb
	dd := YMM()
	u.d, u.dmin = ZMM(), ZMM()
	VPBROADCASTD(row(0), dd)
	VCVTPH2PS(dd, u.d) // [d dmin d dmin ...]
	VMOVSHDUP(u.d, u.dmin)
	VMOVSLDUP(u.d, u.d)
	u.v = unpackQuants45(row, q5)
	return u
}

// unpackQuants45 unpacks the quants of the super-block whose byte off
// row(off) addresses: sub-blocks [0|2], [1|3], [4|6], [5|7].
//
// (GFNI's VGF2P8AFFINEQB takes a byte's high nibble down in one
// instruction instead of VPSRLW and VPANDD, and the Q6_K unpacking's bit
// moves in 5 instead of 7. It made the kernels slower on Zen 5: 512x2048
// from L2, Q4_K 47 -> 37 GB/s, Q5_K 42 -> 26, Q6_K 44 -> 38, 3
// alternated runs.)
func unpackQuants45(row func(off int) Mem, q5 bool) [4]VecVirtual {
	var v [4]VecVirtual
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
		v[2*j], v[2*j+1] = lo, hi
	}
	if !q5 {
		return v
	}
	// (A VPTESTMB and a masked VPADDB per vector ran at the same speed,
	// 52 µs against 40-59 µs for Q5_K 512x2048, and need mask registers.)
	Comment("Fifth bits: sub-block j's is bit j of qh[l], shifted to bit 4.")
	qh := ZMM()
	VBROADCASTI64X4(row(16), qh)
	c16 := c("c16", func() []byte { return repeat(64, 16) })
	for j := range v {
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
		VPTERNLOGD(U8(0xf8), c16, t, v[j]) // v |= t & 16
	}
	return v
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

// Indexes of unpackScales' VPSHUFB: see there.
var (
	scaleGather = []byte{8, 9, 10, 11, 12, 13, 14, 15, 4, 5, 6, 7, 12, 13, 14, 15}
	scaleTops   = []byte{z, z, z, z, 8, 9, 10, 11, z, z, z, z, 4, 5, 6, 7}
)

// unpackScales unpacks the 6-bit scales and mins of the 16-byte super-block
// header in each 128-bit lane of h (d, dmin, then bytes b0..b11 at 4..15;
// get_scale_min_k4) into a zmm whose lanes are [m0..m7 | sc0..sc7]:
//
//	sc_j = b_j & 63, m_j = b_{j+4} & 63                            (j < 4)
//	sc_j = b_{j+4}&15 | b_{j-4}>>6<<4, m_j = b_{j+4}>>4 | b_j>>6<<4 (j >= 4)
//
// One VPSHUFB gathers the low parts' bytes (m: b4..7, b8..11; sc: b0..3,
// b8..11), a dword shift by 4 takes the high nibbles for m4..7, the other
// VPSHUFB gathers the bytes whose top 2 bits complete m4..7 and sc4..7.
func unpackScales(h VecVirtual) VecVirtual {
	a, b := ZMM(), ZMM()
	VPSHUFB(c("ia", func() []byte { return repeat(4, scaleGather...) }), h, a)
	VPSHUFB(c("ib", func() []byte { return repeat(4, scaleTops...) }), h, b)
	VPSRLVD(c("sha", func() []byte { return dwords(0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0) }), a, a)
	VPSRLD(U8(2), b, b)
	VPANDD(c("m30", func() []byte { return repeat(64, 0x30) }), b, b)
	// a = a&m1 | b, m1 keeping 6 bits of the low parts and 4 of the others.
	VPTERNLOGD(U8(0xec), c("m1", func() []byte { return repeat(8, 63, 63, 63, 63, 15, 15, 15, 15) }), b, a)
	return a
}
