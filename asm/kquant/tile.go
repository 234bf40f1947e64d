package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// tile generates the batched (prompt) kernel of a K-quant type: one row by
// 4 vectors at a time, so that each super-block is unpacked once for 4
// vectors (the unpacking is about half the matrix-vector kernels' work).
// The activation side comes prepared by the Go caller, interleaved by
// super-block s and vector t (index s*4+t): xa holds the activation bytes
// in the order the quants are unpacked (256 each), aux the scale vectors
// the matrix-vector kernels build per super-block (XS0, XS1 and for Q4_K
// and Q5_K xs_j*xsum_j: 16 floats each), nc for Q6_K -32 times each lane's
// 4 activation bytes (64 int32).
func tile(name string, blockBytes int) {
	q6 := blockBytes == 210
	q5 := blockBytes == 176
	auxBytes := 192
	if q6 {
		auxBytes = 128
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
	Load(Param("xa").Base(), xap)
	Load(Param("aux").Base(), auxp)
	if q6 {
		Load(Param("nc").Base(), ncp)
	}
	Load(Param("nsb"), cnt)

	Label("superblock")
	row := func(off int) Mem { return Mem{Base: wp, Disp: off} }
	var v [4]VecVirtual
	var sc0, sc1, d, mfd VecVirtual
	if q6 {
		u := unpack6(row, p0, p1)
		v, sc0, sc1, d = u.v, u.sc0, u.sc1, u.d
	} else {
		u := unpack45(row, q5)
		v, sc0, sc1, d = u.v, u.sc0, u.sc1, u.d
		mfd = u.mf
		VMULPS(u.dmin, mfd, mfd)
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
		xs := Mem{Base: auxp, Disp: auxBytes * t}
		scaleSums(a, sc0, sc1, xs, xs.Offset(64), d, acc[t])
		if !q6 {
			VFNMADD231PS(xs.Offset(128), mfd, acc[t])
		}
	}
	ADDQ(U32(blockBytes), wp)
	ADDQ(U32(1024), xap)
	ADDQ(U32(4*auxBytes), auxp)
	if q6 {
		ADDQ(U32(1024), ncp)
	}
	DECQ(cnt)
	JNZ(LabelRef("superblock"))

	Comment("Sum each vector's lanes; store out[t*m] for t < 4.")
	var xs [4]VecVirtual
	for t, a := range acc {
		h := YMM()
		VEXTRACTF64X4(U8(1), a, h)
		VADDPS(h, a.AsY(), h)
		x := XMM()
		VEXTRACTF128(U8(1), h, x)
		VADDPS(x, h.AsX(), x)
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
