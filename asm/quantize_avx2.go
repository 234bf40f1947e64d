package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// quantK2 holds the registers of quantizeGroupsAVX2.
type quantK2 struct {
	qp, sp, sump, xp, n, gs           Register
	abs, sign, half, bias, zero, lowb VecVirtual
	perm                              Register
	c                                 func(c int) Mem
}

// quantizeGroupsAVX2 is quantizeGroupsAVX512 in AVX2 (VEX, ymm), for the
// CPUs with AVX2 and FMA but no AVX-512: the same two passes and the same
// arithmetic, 8 floats a register, so the same results (see the top of the
// file). What differs:
//   - no masks: the last L%8 values of a group go one by one, the maximum
//     in general registers (the same unsigned compare of the patterns with
//     the sign cleared), the division as VDIVSS and the rounding as in
//     roundDiv8, VCVTTSS2SL keeping the integer indefinite as VCVTTPS2DQ,
//     and the low byte stored by MOVB.
//   - no VPMOVDB: each int32 is ANDed with 0xff, so that the unsigned
//     saturating packs VPACKUSDW and VPACKUSWB (their inputs now 0..255)
//     keep exactly the low byte, as VPMOVDB and Go's int8(int32) do,
//     the integer indefinite of a zero scale included (low byte 0; signed
//     packs would give -128); VPERMD puts the packs' lane-interleaved
//     dwords back in order.
func quantizeGroupsAVX2(tab Mem) {
	perm := GLOBL("quantperm", RODATA|NOPTR)
	for i, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		DATA(4*i, U32(v))
	}

	TEXT("quantizeGroupsAVX2", NOSPLIT, "func(q []int8, s []float32, sums []int32, x []float32, gs int) bool")
	Doc("quantizeGroupsAVX2 is quantizeGroupsAVX512 in AVX2.")
	g := &quantK2{
		qp:   Load(Param("q").Base(), GP64()),
		sp:   Load(Param("s").Base(), GP64()),
		sump: Load(Param("sums").Base(), GP64()),
		xp:   Load(Param("x").Base(), GP64()),
		n:    Load(Param("x").Len(), GP64()),
		gs:   Load(Param("gs"), GP64()),
		abs:  YMM(),
		sign: YMM(),
		half: YMM(),
		bias: YMM(),
		zero: YMM(),
		lowb: YMM(),
		perm: YMM(),
		c:    func(c int) Mem { return tab.Offset(4 * c) },
	}
	VPBROADCASTD(g.c(qcAbs), g.abs)
	VPBROADCASTD(g.c(qcSign), g.sign)
	VPBROADCASTD(g.c(qcHalf), g.half)
	VPBROADCASTD(g.c(qcBias), g.bias)
	VPBROADCASTD(g.c(qcByte), g.lowb)
	VMOVDQU(perm, g.perm)
	VPXOR(g.zero, g.zero, g.zero)
	g.scales()
	nsums := Load(Param("sums").Len(), GP64())
	TESTQ(nsums, nsums)
	JNZ(LabelRef("sums_group"))
	g.quantize("plain_", false)
	g.quantize("sums_", true)

	ok := GP8()
	Label("notfinite")
	MOVB(U8(0), ok)
	JMP(LabelRef("ret"))
	Label("done")
	MOVB(U8(1), ok)
	Label("ret")
	VZEROUPPER()
	Store(ok, ReturnIndex(0))
	RET()
}

// scales emits the first pass: every group's scale into s, or a jump to
// notfinite.
func (g *quantK2) scales() {
	xp, sp, n := GP64(), GP64(), GP64()
	MOVQ(g.xp, xp)
	MOVQ(g.sp, sp)
	MOVQ(g.n, n)
	Label("scale")
	TESTQ(n, n)
	JZ(LabelRef("scaled"))
	L, end := groupLen(g.gs, n)

	Comment("m = max |v| as integer bit patterns, 32 values per step.")
	acc := []VecVirtual{YMM(), YMM()}
	VPXOR(acc[0], acc[0], acc[0])
	VPXOR(acc[1], acc[1], acc[1])
	j := GP64()
	XORQ(j, j)
	TESTQ(end, end)
	JZ(LabelRef("max8"))
	Label("max")
	for h := range 4 {
		t := YMM()
		VPAND(at(xp, j, 8*h), g.abs, t)
		VPMAXUD(t, acc[h%2], acc[h%2])
	}
	ADDQ(U8(32), j)
	CMPQ(j, end)
	JB(LabelRef("max"))

	Comment("Then 8 per step, then one by one.")
	Label("max8")
	MOVQ(L, end)
	ANDQ(I32(-8), end)
	CMPQ(j, end)
	JAE(LabelRef("reduce"))
	t := YMM()
	VPAND(at(xp, j, 0), g.abs, t)
	VPMAXUD(t, acc[0], acc[0])
	ADDQ(U8(8), j)
	JMP(LabelRef("max8"))

	Label("reduce")
	VPMAXUD(acc[1], acc[0], acc[0])
	m := XMM()
	VEXTRACTI128(U8(1), acc[0], m)
	VPMAXUD(m, acc[0].AsX(), m)
	sh := XMM()
	VPSHUFD(U8(0x4e), m, sh)
	VPMAXUD(sh, m, m)
	VPSHUFD(U8(0xb1), m, sh)
	VPMAXUD(sh, m, m)
	bits := GP32()
	VMOVD(m, bits)
	Label("max1")
	CMPQ(j, L)
	JAE(LabelRef("maxed"))
	v := GP32()
	MOVL(at(xp, j, 0), v)
	ANDL(U32(0x7fffffff), v)
	CMPL(v, bits)
	CMOVLHI(v, bits)
	INCQ(j)
	JMP(LabelRef("max1"))

	Label("maxed")
	CMPL(bits, U32(0x7f800000))
	JAE(LabelRef("notfinite"))
	VMOVD(bits, m)
	VDIVSS(g.c(qc127), m, m)
	VMOVSS(m, Mem{Base: sp})
	LEAQ(Mem{Base: xp, Index: L, Scale: 4}, xp)
	ADDQ(U8(4), sp)
	SUBQ(L, n)
	JMP(LabelRef("scale"))
	Label("scaled")
}

// quantize emits the second pass, with the block sums or without (then
// groups and x may end in a partial block). Labels start with p.
func (g *quantK2) quantize(p string, sums bool) {
	Label(p + "group")
	TESTQ(g.n, g.n)
	JZ(LabelRef("done"))
	L, end := groupLen(g.gs, g.n)
	d := YMM()
	VBROADCASTSS(Mem{Base: g.sp}, d)
	j := GP64()
	XORQ(j, j)
	if !sums {
		TESTQ(end, end)
		JZ(LabelRef(p + "blockrest"))
	}
	Label(p + "block")
	var iv [4]VecVirtual
	for h := range iv {
		iv[h] = g.roundDiv8(at(g.xp, j, 8*h), d)
		VPAND(g.lowb, iv[h], iv[h])
	}
	VPACKUSDW(iv[1], iv[0], iv[0])
	VPACKUSDW(iv[3], iv[2], iv[2])
	VPACKUSWB(iv[2], iv[0], iv[0])
	VPERMD(iv[0], g.perm, iv[0])
	VMOVDQU(iv[0], Mem{Base: g.qp, Index: j, Scale: 1})
	if sums {
		g.blockSum(iv[0])
	}
	ADDQ(U8(32), j)
	CMPQ(j, end)
	JB(LabelRef(p + "block"))
	if !sums {
		Label(p + "blockrest")
		CMPQ(j, L)
		JB(LabelRef(p + "tail"))
	}

	Label(p + "next")
	LEAQ(Mem{Base: g.xp, Index: L, Scale: 4}, g.xp)
	ADDQ(L, g.qp)
	ADDQ(U8(4), g.sp)
	SUBQ(L, g.n)
	JMP(LabelRef(p + "group"))
	if sums {
		return
	}

	Label(p + "tail")
	Comment("The last L%32 values: 8 per step, then one by one.")
	MOVQ(L, end)
	ANDQ(I32(-8), end)
	Label(p + "tail8")
	CMPQ(j, end)
	JAE(LabelRef(p + "tail1"))
	v := g.roundDiv8(at(g.xp, j, 0), d)
	VPAND(g.lowb, v, v)
	VPACKUSDW(v, v, v)
	VPACKUSWB(v, v, v)
	VPERMD(v, g.perm, v)
	VMOVQ(v.AsX(), Mem{Base: g.qp, Index: j, Scale: 1})
	ADDQ(U8(8), j)
	JMP(LabelRef(p + "tail8"))
	Label(p + "tail1")
	CMPQ(j, L)
	JAE(LabelRef(p + "next"))
	y, h := XMM(), XMM()
	VMOVSS(at(g.xp, j, 0), y)
	VDIVSS(d.AsX(), y, y)
	VANDPS(g.sign.AsX(), y, h)
	VORPS(g.half.AsX(), h, h)
	VADDSS(h, y, y)
	i := GP32()
	VCVTTSS2SI(y, i)
	MOVB(i.As8(), Mem{Base: g.qp, Index: j, Scale: 1})
	INCQ(j)
	JMP(LabelRef(p + "tail1"))
}

// blockSum stores the sum of the 32 int8 of qb at sums and advances sums.
func (g *quantK2) blockSum(qb VecVirtual) {
	u := YMM()
	VPXOR(g.bias, qb, u)
	VPSADBW(g.zero, u, u)
	ux := XMM()
	VEXTRACTI128(U8(1), u, ux)
	VPADDQ(ux, u.AsX(), ux)
	uh := XMM()
	VPSHUFD(U8(0x4e), ux, uh)
	VPADDQ(uh, ux, ux)
	sum := GP32()
	VMOVD(ux, sum)
	SUBL(U32(32*128), sum)
	MOVL(sum, Mem{Base: g.sump})
	ADDQ(U8(4), g.sump)
}

// roundDiv8 returns the int32 round(v/d) (half away from zero) of the 8
// floats at src: trunc(y + copysign(0.49999997, y)) with y = v/d.
func (g *quantK2) roundDiv8(src Mem, d VecVirtual) VecVirtual {
	y := YMM()
	VMOVUPS(src, y)
	VDIVPS(d, y, y)
	h := YMM()
	VANDPS(g.sign, y, h)
	VORPS(g.half, h, h)
	VADDPS(h, y, y)
	i := YMM()
	VCVTTPS2DQ(y, i)
	return i
}
