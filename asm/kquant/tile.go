package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// tile generates the batched (prompt and decode-step) kernel of a
// K-quant type: one row by 4 vectors at a time, so that each super-block
// is unpacked once for 4 vectors (the unpacking is about half the
// matrix-vector kernels' work). Each vector gets exactly the float
// operations the matrix-vector kernels (q45, q6) give it, in the same
// order: per super-block the scaled sums of superSums times d*xs, the
// mins' 4 pair sums (Q4_K, Q5_K) times dmin*xs in an accumulator of their
// own, and at the end blockEnd's tree, a vector in place of a row. So a
// vector's values do not depend on the batch it comes in (batch
// invariance: model/decode.go runs decode steps through these kernels).
//
// The activation side comes prepared by the Go caller, interleaved by
// super-block s and vector t: xa (index s*4+t, 256 bytes each) holds the
// activation bytes in the order the quants are unpacked; aux (auxBytes a
// super-block) for Q4_K and Q5_K the 4 vectors' 8 block sums as words,
// one vector per 128-bit lane, then [xs_t x4] for t < 4, then xs_t; for
// Q6_K xs_t; nc for Q6_K -32 times each lane's 4 activation bytes (64
// int32 a vector).
func tile(name string, blockBytes int) {
	q6 := blockBytes == 210
	q5 := blockBytes == 176
	auxBytes := tileAux45
	if q6 {
		auxBytes = tileAux6
	}
	TEXT(name, NOSPLIT, "func(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)")
	Doc(name+" computes one row by 4 vectors at a time of a batched K-quant",
		"product; see internal/kernels/kquant_tile_amd64.go.")
	rows := Load(Param("rows"), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("done"))
	nsb := Load(Param("nsb"), GP64())
	TESTQ(nsb, nsb)
	JZ(LabelRef("done"))
	wp := Load(Param("w").Base(), GP64())
	op := Load(Param("out").Base(), GP64())
	m4 := Load(Param("m"), GP64())
	SHLQ(U8(2), m4)
	m12 := GP64()
	LEAQ(Mem{Base: m4, Index: m4, Scale: 2}, m12)
	var p0, p1 VecVirtual
	if q6 {
		p0, p1 = ZMM(), ZMM()
		VMOVDQU64(c("q6sc0", func() []byte { return scaleWords(0, 4) }), p0)
		VMOVDQU64(c("q6sc1", func() []byte { return scaleWords(8, 12) }), p1)
	}
	xap, auxp, ncp, cnt := GP64(), GP64(), GP64(), GP64()

	Label("row")
	var acc [4]VecVirtual
	for t := range acc {
		acc[t] = ZMM()
		zero(acc[t])
	}
	var macc VecVirtual // the mins: 4 lanes a vector
	if !q6 {
		macc = ZMM()
		zero(macc)
	}
	Load(Param("xa").Base(), xap)
	Load(Param("aux").Base(), auxp)
	if q6 {
		Load(Param("nc").Base(), ncp)
	}
	Load(Param("nsb"), cnt)

	Label("superblock")
	row := func(off int) Mem { return Mem{Base: wp, Disp: off} }
	var v [4]VecVirtual
	var sc0, sc1, d VecVirtual
	xsAt := func(t int) Mem { return Mem{Base: auxp, Disp: auxBytes - 64 + 4*t} }
	if q6 {
		u := unpack6(row, p0, p1)
		v, sc0, sc1, d = u.v, u.sc0, u.sc1, u.d
		xsAt = func(t int) Mem { return Mem{Base: auxp, Disp: 4 * t} }
	} else {
		u := unpack45(row, q5)
		v, sc0, sc1, d = u.v, u.sc0, u.sc1, u.d
		Comment("The mins: m_j*xsum_j pair sums of each vector (its lane),",
			"times dmin*xs_t, as the matrix-vector kernels do for a row.")
		m := ZMM()
		VPSHUFB(c("mw", func() []byte { return repeat(4, 0, z, 1, z, 2, z, 3, z, 4, z, 5, z, 6, z, 7, z) }), u.tb, m)
		VPMADDWD(Mem{Base: auxp}, m, m)
		VCVTDQ2PS(m, m)
		dm := ZMM()
		VMULPS(Mem{Base: auxp, Disp: 64}, u.dmin, dm)
		VFNMADD231PS(dm, m, macc)
	}
	for t := range acc {
		Comment("Vector " + string(rune('0'+t)) + ".")
		var a [4]VecVirtual
		for j := range a {
			a[j] = ZMM()
			if q6 {
				VMOVDQU64(Mem{Base: ncp, Disp: 256*t + 64*j}, a[j])
			} else {
				zero(a[j])
			}
			vpdpbusd(Mem{Base: xap, Disp: 256*t + 64*j}, v[j], a[j])
		}
		dxs := ZMM()
		VMULPS_BCST(xsAt(t), d, dxs)
		superSums(a, sc0, sc1, dxs, acc[t])
	}
	ADDQ(U32(blockBytes), wp)
	ADDQ(U32(1024), xap)
	ADDQ(U32(auxBytes), auxp)
	if q6 {
		ADDQ(U32(1024), ncp)
	}
	DECQ(cnt)
	JNZ(LabelRef("superblock"))

	Comment("Sum each vector's lanes by blockEnd's tree; store out[t*m] for t < 4.")
	var xs [4]VecVirtual
	for t, a := range acc {
		h := YMM()
		VEXTRACTF64X4(U8(1), a, h)
		VADDPS(h, a.AsY(), h)
		x := XMM()
		VEXTRACTF128(U8(1), h, x)
		VADDPS(x, h.AsX(), x)
		if macc != nil {
			mt := macc.AsX()
			if t > 0 {
				mt = XMM()
				VEXTRACTF32X4(U8(t), macc, mt)
			}
			VADDPS(mt, x, x)
		}
		xs[t] = x
	}
	res := XMM()
	VHADDPS(xs[1], xs[0], xs[0])
	VHADDPS(xs[3], xs[2], xs[2])
	VHADDPS(xs[2], xs[0], res)
	VMOVSS(res, Mem{Base: op})
	VEXTRACTPS(U8(1), res, Mem{Base: op, Index: m4, Scale: 1})
	VEXTRACTPS(U8(2), res, Mem{Base: op, Index: m4, Scale: 2})
	VEXTRACTPS(U8(3), res, Mem{Base: op, Index: m12, Scale: 1})
	ADDQ(U8(4), op)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}

// The bytes of aux a super-block: Q4_K and Q5_K 64 of block sums, 64 of
// [xs_t x4], 16 of xs_t (then 48 of padding); Q6_K 16 of xs_t (then 48).
const (
	tileAux45 = 192
	tileAux6  = 64
)
