package main

// The activation quantizer, quantizeGroupsAVX512 (internal/kernels/quantize_amd64.go
// declares it; internal/kernels/q8.go has the Go it equals bit for bit).
//
// One call quantizes a whole activation in two passes over x (8 to 22 KB,
// in L1 or L2): first every group's scale, max|v|/127, into s; then every
// value's round(v/scale) with C's rounding into q, and with sums the int32
// sum of each block of 32 results.
//
// Why this shape (BenchmarkQuantize and variants, 2-core AMD EPYC Zen 5
// VM, medians of alternated runs):
//   - one call, not one per group: calling the same kernel once per group
//     of 32 takes 730-780 ns for 2048 values with sums, one call 290 ns.
//   - two passes, not one: done group by group, each group's divisions wait
//     for its own scale (max reduction, VDIVSS: some 40 cycles), and those
//     waiting instructions fill the scheduler, so the next groups do not
//     start early. The first pass has few instructions per group and its
//     groups overlap; the second pass loads its scales from s and never
//     waits. In groups of 32 with sums, 2048 values 411 -> 292 ns and 5632
//     1132 -> 768; in groups of 64, 258 -> 197 and 696 -> 541.
//   - rounding as trunc(y + copysign(0.49999997, y)), 4 instructions after
//     the division, rather than trunc(y) + trunc(2*(y - trunc(y))), 6: 2048
//     values in groups of 32 with sums 477 -> 409 ns (one pass).
// The divisions themselves (VDIVPS, about 0.8 ns per 16 floats here) are
// a third to a half of the time that is left.
//
// Exactness, step by step:
//   - max: the largest |v| is the largest of the bit patterns with the sign
//     cleared, compared as integers (VPMAXUD): for non-NaN floats the order
//     of |v| is the order of those patterns, and the Go loop's m is one of
//     the |v| (or +0), so the bits are the same. NaN and the infinities have
//     patterns >= 0x7f800000 (+Inf), which is the finiteness test: one
//     compare per group.
//   - scale = m/127 is VDIVSS, the float32 division of the Go code.
//   - y = v/scale is VDIVPS, float32 as in the Go code. |y| <= 191 (more
//     than 127 only for subnormal scales, where m/scale is not close to
//     127). For such y, y + copysign(0.49999997, y) in float32, truncated
//     (VCVTTPS2DQ), is y rounded half away from zero, as the Go code's
//     y + copysign(0.5, y) in float64: a tie k+0.5 plus 0.5-2^-25 rounds
//     up to k+1 (to even at k = 0: 1-2^-25 is halfway between 1-2^-24 and
//     1), and y below a tie plus 0.49999997 stays below k+1 (its sum is in
//     y's binade, where y's last bit is kept). Adding 0.5 instead is not
//     exact: 0.49999997 + 0.5 rounds to 1. Checked for every float32 |y| <=
//     300 against the Go formula.
//   - int8: VPMOVDB keeps the low byte, as Go's int8(int32) conversion
//     (values past 127 wrap alike).
//   - sums: the bytes as stored, XORed with 0x80 (v+128, unsigned), summed
//     by VPSADBW, minus 32*128: exact, wrapped values included.
//   - a zero scale (max/127 rounds to 0: only zeros and values below 64
//     times the smallest subnormal) needs no code of its own: v/0 is ±Inf
//     or NaN, which VCVTTPS2DQ turns into the integer indefinite 0x80000000
//     (exceptions are masked, as Go runs), whose low byte is 0: the group's
//     values are 0, as the Go code's clear(out), and so are its sums.

import (
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Constants of quantizeGroupsAVX512, one dword each (broadcast at use).
const (
	qcAbs  = iota // 0x7fffffff: clears the sign bit
	qcSign        // 0x80000000: the sign bit
	qcHalf        // float32 0.49999997, the float below 0.5
	qc127         // float32 127
	qcBias        // 0x80808080: int8 to uint8 (v+128) by XOR
	qcByte        // 0x000000ff: an int32's low byte (quantizeGroupsAVX2)
	nQuantConst
)

// quantK holds the registers of quantizeGroupsAVX512.
type quantK struct {
	qp, sp, sump, xp, n, gs Register
	abs, sign, half, bias   VecVirtual
	zeroY                   VecVirtual
	k                       Register
	c                       func(c int) Mem
}

func quantizeGroups() {
	tab := GLOBL("quantconst", RODATA|NOPTR)
	vals := [nQuantConst]uint32{
		qcAbs:  0x7fffffff,
		qcSign: 0x80000000,
		qcHalf: math.Float32bits(math.Nextafter32(0.5, 0)),
		qc127:  math.Float32bits(127),
		qcBias: 0x80808080,
		qcByte: 0xff,
	}
	for c, v := range vals {
		DATA(4*c, U32(v))
	}

	TEXT("quantizeGroupsAVX512", NOSPLIT, "func(q []int8, s []float32, sums []int32, x []float32, gs int) bool")
	Doc("quantizeGroupsAVX512 quantizes x in groups of gs values into q, one",
		"scale per group into s and, if len(sums) > 0, the sum of every 32",
		"values of q into sums (then gs and len(x) are multiples of 32);",
		"false if x is not all finite.")
	g := &quantK{
		qp:    Load(Param("q").Base(), GP64()),
		sp:    Load(Param("s").Base(), GP64()),
		sump:  Load(Param("sums").Base(), GP64()),
		xp:    Load(Param("x").Base(), GP64()),
		n:     Load(Param("x").Len(), GP64()),
		gs:    Load(Param("gs"), GP64()),
		abs:   ZMM(),
		sign:  ZMM(),
		half:  ZMM(),
		bias:  YMM(),
		zeroY: YMM(),
		k:     K(),
		c:     func(c int) Mem { return tab.Offset(4 * c) },
	}
	VPBROADCASTD(g.c(qcAbs), g.abs)
	VPBROADCASTD(g.c(qcSign), g.sign)
	VPBROADCASTD(g.c(qcHalf), g.half)
	VPBROADCASTD(g.c(qcBias), g.bias)
	VPXORD(g.zeroY, g.zeroY, g.zeroY)
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

	quantizeGroupsAVX2(tab)
}

// groupLen sets L to this group's length, min(gs, n), and end to the
// length of its whole blocks of 32 (both kernels).
func groupLen(gs, n Register) (L, end Register) {
	L, end = GP64(), GP64()
	MOVQ(gs, L)
	CMPQ(n, L)
	CMOVQLT(n, L)
	MOVQ(L, end)
	ANDQ(I32(-32), end)
	return L, end
}

// scales emits the first pass: every group's scale into s, or a jump to
// notfinite. It leaves g's registers as they were. The usual path runs
// straight through, with the loops' back edges as its only taken branches;
// the tails (L%32 values) are out of line.
func (g *quantK) scales() {
	xp, sp, n := GP64(), GP64(), GP64()
	MOVQ(g.xp, xp)
	MOVQ(g.sp, sp)
	MOVQ(g.n, n)
	Label("scale")
	TESTQ(n, n)
	JZ(LabelRef("scaled"))
	L, end := groupLen(g.gs, n)

	Comment("m = max |v| as integer bit patterns, 32 values per step.")
	acc := []VecVirtual{ZMM(), ZMM()}
	VPXORD(acc[0], acc[0], acc[0])
	VPXORD(acc[1], acc[1], acc[1])
	j := GP64()
	XORQ(j, j)
	TESTQ(end, end)
	JZ(LabelRef("maxrest"))
	Label("max")
	for h := range acc {
		t := ZMM()
		VPANDD(at(xp, j, 16*h), g.abs, t)
		VPMAXUD(t, acc[h], acc[h])
	}
	ADDQ(U8(32), j)
	CMPQ(j, end)
	JB(LabelRef("max"))
	Label("maxrest")
	TESTQ(U32(31), L)
	JNZ(LabelRef("maxtail"))

	Label("reduce")
	VPMAXUD(acc[1], acc[0], acc[0])
	y := YMM()
	VEXTRACTI64X4(U8(1), acc[0], y)
	VPMAXUD(y, acc[0].AsY(), y)
	m := XMM()
	VEXTRACTI32X4(U8(1), y, m)
	VPMAXUD(m, y.AsX(), m)
	sh := XMM()
	VPSHUFD(U8(0x4e), m, sh)
	VPMAXUD(sh, m, m)
	VPSHUFD(U8(0xb1), m, sh)
	VPMAXUD(sh, m, m)
	bits := GP32()
	VMOVD(m, bits)
	CMPL(bits, U32(0x7f800000))
	JAE(LabelRef("notfinite"))
	VDIVSS(g.c(qc127), m, m)
	VMOVSS(m, Mem{Base: sp})
	LEAQ(Mem{Base: xp, Index: L, Scale: 4}, xp)
	ADDQ(U8(4), sp)
	SUBQ(L, n)
	JMP(LabelRef("scale"))

	Label("maxtail")
	Comment("The last L%32 values: 16, then under a mask (the others read as 0).")
	rem := GP64()
	MOVQ(L, rem)
	SUBQ(j, rem)
	CMPQ(rem, U8(16))
	JB(LabelRef("maxmask"))
	t := ZMM()
	VPANDD(at(xp, j, 0), g.abs, t)
	VPMAXUD(t, acc[0], acc[0])
	ADDQ(U8(16), j)
	SUBQ(U8(16), rem)
	Label("maxmask")
	TESTQ(rem, rem)
	JZ(LabelRef("reduce"))
	loadMask16(rem, g.k)
	t = ZMM()
	VPANDD_Z(at(xp, j, 0), g.abs, g.k, t)
	VPMAXUD(t, acc[1], acc[1])
	JMP(LabelRef("reduce"))
	Label("scaled")
}

// quantize emits the second pass, the divisions by the scales in s, with
// the block sums or without (then groups and x may end in a partial
// block). Labels start with p.
func (g *quantK) quantize(p string, sums bool) {
	Label(p + "group")
	TESTQ(g.n, g.n)
	JZ(LabelRef("done"))
	L, end := groupLen(g.gs, g.n)
	d := ZMM()
	VBROADCASTSS(Mem{Base: g.sp}, d)
	j := GP64()
	XORQ(j, j)
	if !sums {
		TESTQ(end, end)
		JZ(LabelRef(p + "blockrest"))
	}
	Label(p + "block")
	lo := g.roundDiv16(at(g.xp, j, 0), d, nil)
	hi := g.roundDiv16(at(g.xp, j, 16), d, nil)
	b0, b1 := XMM(), XMM()
	VPMOVDB(lo, b0)
	VPMOVDB(hi, b1)
	qb := YMM()
	VINSERTI32X4(U8(1), b1, b0.AsY(), qb)
	VMOVDQU8(qb, Mem{Base: g.qp, Index: j, Scale: 1})
	if sums {
		g.blockSum(qb)
	}
	ADDQ(U8(32), j)
	CMPQ(j, end)
	JB(LabelRef(p + "block"))
	if !sums {
		Label(p + "blockrest")
		TESTQ(U32(31), L)
		JNZ(LabelRef(p + "tail"))
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
	Comment("The last L%32 values: 16, then under a mask.")
	rem := GP64()
	MOVQ(L, rem)
	SUBQ(j, rem)
	CMPQ(rem, U8(16))
	JB(LabelRef(p + "tailmask"))
	v := g.roundDiv16(at(g.xp, j, 0), d, nil)
	VPMOVDB(v, Mem{Base: g.qp, Index: j, Scale: 1})
	ADDQ(U8(16), j)
	SUBQ(U8(16), rem)
	Label(p + "tailmask")
	TESTQ(rem, rem)
	JZ(LabelRef(p + "next"))
	loadMask16(rem, g.k)
	v = g.roundDiv16(at(g.xp, j, 0), d, g.k)
	VPMOVDB(v, g.k, Mem{Base: g.qp, Index: j, Scale: 1})
	JMP(LabelRef(p + "next"))
}

// blockSum stores the sum of the 32 int8 of qb at sums and advances sums:
// each byte XOR 0x80 is v+128 as uint8, VPSADBW adds 8 of them into each
// qword, and the total is less 32*128.
func (g *quantK) blockSum(qb VecVirtual) {
	u := YMM()
	VPXORD(g.bias, qb, u)
	VPSADBW(g.zeroY, u, u)
	ux := XMM()
	VEXTRACTI32X4(U8(1), u, ux)
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

// roundDiv16 returns the int32 round(v/d) (half away from zero) of the 16
// floats at src, or of the lanes of mask k (the others read as 0) when k is
// not nil: trunc(y + copysign(0.49999997, y)) with y = v/d (exact: see the
// top of the file).
func (g *quantK) roundDiv16(src Mem, d VecVirtual, k Register) VecVirtual {
	y := ZMM()
	if k == nil {
		VMOVUPS(src, y)
	} else {
		VMOVUPS_Z(src, k, y)
	}
	VDIVPS(d, y, y)
	h := ZMM()
	VPANDD(g.sign, y, h)
	VPORD(g.half, h, h) // copysign(0.49999997, y)
	VADDPS(h, y, y)
	i := ZMM()
	VCVTTPS2DQ(y, i)
	return i
}
