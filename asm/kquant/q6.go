package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// q6 generates the Q6_K kernel for blocks of r rows.
//
// Per 128-value half h: zmm ql = ql[64h:64h+64], qh = [qh[32h:32h+32] twice].
// Values 0..63 of the half are ql&15 | (bits 0,1 of qh[l] for the low 256
// bits, bits 2,3 for the high) << 4; values 64..127 are ql>>4 | (bits 4,5,
// bits 6,7) << 4. A word shift of qh by 4/2 (low/high half) or 0/2 to the
// right puts the two bits at 4..5; the mask 0x30 cleans them and one
// VPTERNLOGD ors in the nibble.
func q6(r int) {
	name := "matVecQ6_K" + []string{"", "x1", "", "", "x4"}[r] + "VNNI"
	k := prologue(name, 210, r, false)
	p0, p1 := ZMM(), ZMM()
	VMOVDQU64(c("q6sc0", func() []byte { return scaleWords(0, 4) }), p0)
	VMOVDQU64(c("q6sc1", func() []byte { return scaleWords(8, 12) }), p1)
	k.blockStart()

	Comment("Shared by the rows: the activation, -32 times the sums of each",
		"lane's 4 bytes, and the activation's scale.")
	var x [4]Mem
	var nc [4]VecVirtual
	c32, zv := ZMM(), ZMM()
	VMOVDQU64(c("c32", func() []byte { return repeat(64, 32) }), c32)
	zero(zv)
	for i := range x {
		x[i], nc[i] = Mem{Base: k.xp, Disp: 64 * i}, ZMM()
		t := ZMM()
		zero(t)
		vpdpbusd(x[i], c32, t)
		VPSUBD(t, zv, nc[i])
	}
	xs := ZMM()
	VBROADCASTSS(Mem{Base: k.xsp}, xs)

	for i := range r {
		Comment("Row " + string(rune('0'+i)) + ".")
		u := unpack6(func(off int) Mem { return k.row(i, off) }, p0, p1)
		var a [4]VecVirtual
		for j := range a {
			a[j] = ZMM()
			VMOVDQA64(nc[j], a[j])
			vpdpbusd(x[j], u.v[j], a[j])
		}
		VMULPS(xs, u.d, u.d)
		superSums(a, u.sc0, u.sc1, u.d, k.acc[i])
	}
	k.next()
	k.blockEnd()
}

// unpacked6 is a Q6_K super-block of one row, unpacked.
type unpacked6 struct {
	v        [4]VecVirtual // quants 0..63 of values 0-63, 64-127, 128-191, 192-255
	sc0, sc1 VecVirtual    // scale words in the packed sums' order
	d        VecVirtual    // broadcast
}

// unpack6 unpacks the super-block whose byte off row(off) addresses; p0, p1
// hold the VPERMW indexes of the scales (scaleWords).
func unpack6(row func(off int) Mem, p0, p1 VecVirtual) unpacked6 {
	var u unpacked6
	m0f := c("m0f", func() []byte { return repeat(64, 0x0f) })
	m30 := c("m30", func() []byte { return repeat(64, 0x30) })
	shl := c("q6shl", func() []byte { return append(repeat(16, 4, 0), repeat(16, 2, 0)...) })
	shr := c("q6shr", func() []byte { return append(repeat(16, 0, 0), repeat(16, 2, 0)...) })
	for h := range 2 {
		ql, qh := ZMM(), ZMM()
		VMOVDQU64(row(64*h), ql)
		VBROADCASTI64X4(row(128+32*h), qh)
		lo, hi, t := ZMM(), ZMM(), ZMM()
		VPSLLVW(shl, qh, lo)
		VPANDD(m30, lo, lo)
		VPTERNLOGD(U8(0xf8), m0f, ql, lo) // lo |= ql & 15
		VPSRLVW(shr, qh, hi)
		VPANDD(m30, hi, hi)
		VPSRLW(U8(4), ql, t)
		VPTERNLOGD(U8(0xf8), m0f, t, hi)
		u.v[2*h], u.v[2*h+1] = lo, hi
	}
	sc := YMM()
	u.sc0, u.sc1 = ZMM(), ZMM()
	zero(sc.AsZ()) // (for avo: all of the zmm is set)
	VPMOVSXBW(row(192), sc)
	VPERMW(sc.AsZ(), p0, u.sc0)
	VPERMW(sc.AsZ(), p1, u.sc1)
	dh := YMM()
	u.d = ZMM()
	VPBROADCASTW(row(208), dh)
	VCVTPH2PS(dh, u.d)
	return u
}

// scaleWords is the VPERMW index that spreads the 16 scales (words) over
// the packed sums: 128-bit lane q holds 4 words of sub-block a+q, then 4 of
// sub-block b+q.
func scaleWords(a, b uint16) []byte {
	var w []uint16
	for q := range uint16(4) {
		w = append(w, a+q, a+q, a+q, a+q, b+q, b+q, b+q, b+q)
	}
	return words(w...)
}
