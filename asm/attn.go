package main

// Kernels for the transformer's non-matrix steps: SwiGLU and softmax with a
// vectorised exp, and the strided attention products (see
// internal/kernels/f32_amd64.go for the Go declarations and internal/kernels/exp.go for the exp
// algorithm, which the code below follows step by step).

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Indexes of the constants in expTab, each stored 16 times (64 bytes) so
// that it serves as a ymm or zmm memory operand.
const (
	cLog2e = iota
	cMagic
	cLn2Hi
	cLn2Lo
	cP0
	cP1
	cP2
	cP3
	cP4
	cP5
	cOne
	cHi
	cLo
	cSign
	cMagicBits
	cBias
	cNegInf
	nConst
)

var expTab Mem

// expConstants emits the constant table. The values must match internal/kernels/exp.go.
func expConstants() {
	bits := [nConst]uint32{
		cLog2e:     math.Float32bits(1.44269504088896341),
		cMagic:     math.Float32bits(12582912),
		cLn2Hi:     math.Float32bits(0.693359375),
		cLn2Lo:     math.Float32bits(-2.12194440e-4),
		cP0:        math.Float32bits(1.9875691500e-4),
		cP1:        math.Float32bits(1.3981999507e-3),
		cP2:        math.Float32bits(8.3334519073e-3),
		cP3:        math.Float32bits(4.1665795894e-2),
		cP4:        math.Float32bits(1.6666665459e-1),
		cP5:        math.Float32bits(5.0000001201e-1),
		cOne:       math.Float32bits(1),
		cHi:        math.Float32bits(89),
		cLo:        math.Float32bits(-104),
		cSign:      0x80000000,
		cMagicBits: 0x4b400000,
		cBias:      127,
		cNegInf:    0xff800000,
	}
	expTab = GLOBL("expconst", RODATA|NOPTR)
	for c, b := range bits {
		for j := 0; j < 16; j++ {
			DATA(64*c+4*j, U32(b))
		}
	}
}

// cst is constant c as a vector memory operand.
func cst(c int) Mem { return expTab.Offset(64 * c) }

// vk describes the vector width of a kernel and holds its tail mask.
type vk struct {
	zmm   bool
	lanes int
	k     Register   // AVX-512 tail mask
	m     VecVirtual // AVX2 tail mask
	vec   func() VecVirtual
}

func newVK(zmm bool) *vk {
	if zmm {
		return &vk{zmm: true, lanes: 16, vec: ZMM}
	}
	return &vk{lanes: 8, vec: YMM}
}

// setMask selects the first rem lanes (1 <= rem <= lanes); rem is clobbered.
func (g *vk) setMask(rem Register) {
	if g.zmm {
		g.k = K()
		loadMask16(rem, g.k)
	} else {
		g.m = loadMask8(rem)
	}
}

// load loads a vector, or under the tail mask the first lanes only (the
// others read as zero and are not accessed).
func (g *vk) load(m Mem, dst VecVirtual, tail bool) {
	switch {
	case !tail:
		VMOVUPS(m, dst)
	case g.zmm:
		VMOVUPS_Z(m, g.k, dst)
	default:
		VMASKMOVPS(m, g.m, dst)
	}
}

func (g *vk) store(src VecVirtual, m Mem, tail bool) {
	switch {
	case !tail:
		VMOVUPS(src, m)
	case g.zmm:
		VMOVUPS(src, g.k, m)
	default:
		VMASKMOVPS(src, g.m, m)
	}
}

// elementwise emits a loop over n elements: body(i, false) for each full
// vector at element i, then body(i, true) once under the tail mask if n is
// not a multiple of the vector width.
func (g *vk) elementwise(n Register, body func(i Register, tail bool)) {
	i := GP64()
	XORQ(i, i)
	end := GP64()
	MOVQ(n, end)
	ANDQ(I32(-g.lanes), end)
	Label("loop")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	body(i, false)
	ADDQ(U8(g.lanes), i)
	JMP(LabelRef("loop"))
	Label("tail")
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef("done"))
	g.setMask(rem)
	body(i, true)
	Label("done")
}

// exp replaces every lane of x by exp32(x) (internal/kernels/exp.go). hi and lo hold
// the clamp bounds; they are operands that let NaN through: VMINPS/VMAXPS
// return their first (Go order) operand when either is NaN.
func (g *vk) exp(x, hi, lo VecVirtual) {
	VMINPS(x, hi, x)
	VMAXPS(x, lo, x)
	t := g.vec()
	VMULPS(cst(cLog2e), x, t)
	VADDPS(cst(cMagic), t, t)
	n := g.vec()
	VSUBPS(cst(cMagic), t, n)
	Comment("r = x - n*ln2Hi - n*ln2Lo (the first product and difference are exact)")
	VFNMADD231PS(cst(cLn2Hi), n, x)
	VFNMADD231PS(cst(cLn2Lo), n, x)
	p := g.vec()
	VMOVUPS(cst(cP0), p)
	for _, c := range []int{cP1, cP2, cP3, cP4, cP5} {
		VFMADD213PS(cst(c), x, p)
	}
	r2 := g.vec()
	VMULPS(x, x, r2)
	VFMADD213PS(x, r2, p)
	VADDPS(cst(cOne), p, p)
	if g.zmm {
		Comment("x = p * 2^n, one rounding (denormals and overflow included)")
		VSCALEFPS(n, p, x)
		return
	}
	Comment("x = p * 2^(n>>1) * 2^(n-n>>1): the first product is exact")
	k := g.vec()
	VPSUBD(cst(cMagicBits), t, k)
	k1 := g.vec()
	VPSRAD(U8(1), k, k1)
	VPSUBD(k1, k, k)
	VPADDD(cst(cBias), k1, k1)
	VPSLLD(U8(23), k1, k1)
	VPADDD(cst(cBias), k, k)
	VPSLLD(U8(23), k, k)
	VMULPS(k1, p, p)
	VMULPS(k, p, x)
}

func (g *vk) clampBounds() (hi, lo VecVirtual) {
	hi, lo = g.vec(), g.vec()
	VMOVUPS(cst(cHi), hi)
	VMOVUPS(cst(cLo), lo)
	return hi, lo
}

func siluMul(name string, zmm bool) {
	TEXT(name, NOSPLIT, "func(hb, hb2 []float32)")
	Doc(name + " sets hb[i] = v * (1/(1+exp(-v))) * hb2[i] with v = hb[i], in that order.")
	g := newVK(zmm)
	hp := Load(Param("hb").Base(), GP64())
	h2p := Load(Param("hb2").Base(), GP64())
	n := Load(Param("hb").Len(), GP64())
	hi, lo := g.clampBounds()
	one := g.vec()
	VMOVUPS(cst(cOne), one)
	g.elementwise(n, func(i Register, tail bool) {
		v := g.vec()
		g.load(at(hp, i, 0), v, tail)
		e := g.vec()
		VXORPS(cst(cSign), v, e)
		g.exp(e, hi, lo)
		VADDPS(one, e, e)
		q := g.vec()
		VDIVPS(e, one, q)
		VMULPS(q, v, v)
		w := g.vec()
		g.load(at(h2p, i, 0), w, tail)
		VMULPS(w, v, v)
		g.store(v, at(hp, i, 0), tail)
	})
	VZEROUPPER()
	RET()
}

func expSubSum(name string, zmm bool) {
	TEXT(name, NOSPLIT, "func(x []float32, m float32) float32")
	Doc(name + " sets x[i] = exp(x[i]-m) and returns the sum of the new x[i].")
	g := newVK(zmm)
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	m := g.vec()
	VBROADCASTSS(addr(Param("m")), m)
	hi, lo := g.clampBounds()
	acc := g.vec()
	zero(zmm, acc)
	g.elementwise(n, func(i Register, tail bool) {
		v := g.vec()
		g.load(at(xp, i, 0), v, tail)
		VSUBPS(m, v, v)
		g.exp(v, hi, lo)
		g.store(v, at(xp, i, 0), tail)
		switch {
		case !tail:
			VADDPS(v, acc, acc)
		case zmm:
			VADDPS(v, acc, g.k, acc)
		default:
			VANDPS(g.m, v, v)
			VADDPS(v, acc, acc)
		}
	})
	sum := hsum1(acc, zmm)
	VZEROUPPER()
	Store(sum, ReturnIndex(0))
	RET()
}

func maxf(name string, zmm bool) {
	TEXT(name, NOSPLIT, "func(x []float32) float32")
	Doc(name + " returns the largest element of x (-Inf if empty); x has no NaNs.")
	g := newVK(zmm)
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	var acc [4]VecVirtual
	for j := range acc {
		acc[j] = g.vec()
		VMOVUPS(cst(cNegInf), acc[j])
	}
	i := GP64()
	XORQ(i, i)
	end := GP64()
	MOVQ(n, end)
	ANDQ(I32(-4*g.lanes), end)
	Label("loop4")
	CMPQ(i, end)
	JAE(LabelRef("loop1"))
	for j := range acc {
		VMAXPS(at(xp, i, j*g.lanes), acc[j], acc[j])
	}
	ADDQ(U8(4*g.lanes), i)
	JMP(LabelRef("loop4"))
	Label("loop1")
	MOVQ(n, end)
	ANDQ(I32(-g.lanes), end)
	Label("loop1body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	VMAXPS(at(xp, i, 0), acc[0], acc[0])
	ADDQ(U8(g.lanes), i)
	JMP(LabelRef("loop1body"))
	Label("tail")
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef("reduce"))
	g.setMask(rem)
	if zmm {
		VMAXPS(at(xp, i, 0), acc[1], g.k, acc[1])
	} else {
		t := g.vec()
		VMASKMOVPS(at(xp, i, 0), g.m, t)
		ninf := g.vec()
		VMOVUPS(cst(cNegInf), ninf)
		VBLENDVPS(g.m, t, ninf, t) // masked-off lanes: -Inf
		VMAXPS(t, acc[1], acc[1])
	}
	Label("reduce")
	VMAXPS(acc[1], acc[0], acc[0])
	VMAXPS(acc[3], acc[2], acc[2])
	VMAXPS(acc[2], acc[0], acc[0])
	x := XMM()
	if zmm {
		y := YMM()
		VEXTRACTF64X4(U8(1), acc[0], y)
		VMAXPS(y, acc[0].AsY(), y)
		VEXTRACTF32X4(U8(1), y, x)
		VMAXPS(x, y.AsX(), x)
	} else {
		VEXTRACTF128(U8(1), acc[0], x)
		VMAXPS(x, acc[0].AsX(), x)
	}
	t := XMM()
	VMOVHLPS(x, x, t)
	VMAXPS(t, x, x)
	VMOVSHDUP(x, t)
	VMAXSS(t, x, x)
	VZEROUPPER()
	Store(x, ReturnIndex(0))
	RET()
}

func divScalar(name string, zmm bool) {
	TEXT(name, NOSPLIT, "func(x []float32, d float32)")
	Doc(name + " sets x[i] = x[i] / d.")
	g := newVK(zmm)
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	d := g.vec()
	VBROADCASTSS(addr(Param("d")), d)
	g.elementwise(n, func(i Register, tail bool) {
		v := g.vec()
		g.load(at(xp, i, 0), v, tail)
		VDIVPS(d, v, v)
		g.store(v, at(xp, i, 0), tail)
	})
	VZEROUPPER()
	RET()
}

// reduce4 folds four accumulators a, b, c, d into one vector whose every
// 128-bit lane holds [Σa Σb Σc Σd] over that lane's elements.
func (g *vk) reduce4(acc []VecVirtual) VecVirtual {
	pair := func(a, b VecVirtual) VecVirtual {
		lo, hi := g.vec(), g.vec()
		VUNPCKLPS(b, a, lo) // [a0 b0 a1 b1]
		VUNPCKHPS(b, a, hi) // [a2 b2 a3 b3]
		VADDPS(hi, lo, lo)  // [a02 b02 a13 b13]
		return lo
	}
	ab, cd := pair(acc[0], acc[1]), pair(acc[2], acc[3])
	lo, hi := g.vec(), g.vec()
	VSHUFPS(U8(0x44), cd, ab, lo) // [a02 b02 c02 d02]
	VSHUFPS(U8(0xee), cd, ab, hi) // [a13 b13 c13 d13]
	VADDPS(hi, lo, lo)
	return lo
}

// dotStrided generates a kernel computing rows rows (8 or 4) per pass of
// out[t] = dot(q, k[t*stride:]). The row block shares each load of q across
// rows FMAs into rows independent accumulators (8 cover the FMA latency);
// the loop runs over q in vectors, so any length works, with a masked last
// step that reads nothing past the end of q or of each row.
func dotStrided(name string, zmm bool, rows int) {
	TEXT(name, NOSPLIT, "func(out, q, k []float32, stride int)")
	Doc(fmt.Sprintf("%s sets out[t] = dot(q, k[t*stride:t*stride+len(q)]), %d rows per pass;", name, rows),
		fmt.Sprintf("len(out) is a multiple of %d.", rows))
	g := newVK(zmm)
	op := Load(Param("out").Base(), GP64())
	blocks := Load(Param("out").Len(), GP64())
	SHRQ(U8(bitsOf(rows)), blocks)
	qp0 := Load(Param("q").Base(), GP64())
	n := Load(Param("q").Len(), GP64())
	kp := Load(Param("k").Base(), GP64())
	s := Load(Param("stride"), GP64())
	SHLQ(U8(2), s)
	s3 := GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)
	nv := GP64()
	MOVQ(n, nv)
	SHRQ(U8(bitsOf(g.lanes)), nv)
	rem := GP64()
	MOVQ(n, rem)
	ANDQ(U8(g.lanes-1), rem)
	g.setMask(rem) // all zero when there is no tail

	acc := make([]VecVirtual, rows)
	for r := range acc {
		acc[r] = g.vec()
	}
	Label("blockloop")
	TESTQ(blocks, blocks)
	JZ(LabelRef("done"))
	zero(zmm, acc...)
	pa := GP64()
	MOVQ(kp, pa)
	var pb Register = pa
	if rows == 8 {
		pb8 := GP64()
		LEAQ(Mem{Base: kp, Index: s, Scale: 4}, pb8)
		pb = pb8
	}
	row := func(r int) Mem { return row8(pa, pb, s, s3, r) }
	qp := GP64()
	MOVQ(qp0, qp)
	cnt := GP64()
	MOVQ(nv, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tail"))
	Label("colloop")
	qv := g.vec()
	VMOVUPS(Mem{Base: qp}, qv)
	for r := range acc {
		VFMADD231PS(row(r), qv, acc[r])
	}
	ptrs := []Register{qp, pa}
	if rows == 8 {
		ptrs = append(ptrs, pb)
	}
	for _, p := range ptrs {
		ADDQ(U8(4*g.lanes), p)
	}
	DECQ(cnt)
	JNZ(LabelRef("colloop"))

	Label("tail")
	qt := g.vec()
	if zmm {
		KORTESTW(g.k, g.k)
		JZ(LabelRef("reduce"))
		VMOVUPS_Z(Mem{Base: qp}, g.k, qt)
		for r := range acc {
			VFMADD231PS(row(r), qt, g.k, acc[r])
		}
	} else {
		VPTEST(g.m, g.m)
		JZ(LabelRef("reduce"))
		VMASKMOVPS(Mem{Base: qp}, g.m, qt)
		for r := range acc {
			kt := g.vec()
			VMASKMOVPS(row(r), g.m, kt)
			VFMADD231PS(kt, qt, acc[r])
		}
	}

	Label("reduce")
	x := g.reduce4(acc[:4])
	switch {
	case rows == 4:
		VMOVUPS(toXMM(x, zmm), Mem{Base: op})
	case !zmm:
		y := g.reduce4(acc[4:])
		z1, z2 := YMM(), YMM()
		VPERM2F128(U8(0x20), y, x, z1) // [x.lo y.lo]
		VPERM2F128(U8(0x31), y, x, z2) // [x.hi y.hi]
		VADDPS(z2, z1, z1)
		VMOVUPS(z1, Mem{Base: op})
	default:
		y := g.reduce4(acc[4:])
		z1, z2 := ZMM(), ZMM()
		VSHUFF32X4(U8(0x88), y, x, z1) // [x0 x2 y0 y2]
		VSHUFF32X4(U8(0xdd), y, x, z2) // [x1 x3 y1 y3]
		VADDPS(z2, z1, z1)             // [x01 x23 y01 y23]
		t1, t2 := ZMM(), ZMM()
		VSHUFF32X4(U8(0x08), z1, z1, t1) // [x01 y01 . .]
		VSHUFF32X4(U8(0x0d), z1, z1, t2) // [x23 y23 . .]
		VADDPS(t2.AsY(), t1.AsY(), t1.AsY())
		VMOVUPS(t1.AsY(), Mem{Base: op})
	}
	ADDQ(U8(4*rows), op)
	LEAQ(Mem{Base: kp, Index: s, Scale: uint8(rows)}, kp)
	DECQ(blocks)
	JMP(LabelRef("blockloop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// axpyStridedChunk generates out[i] += Σt a[t]*v[t*stride+i] for
// 1 <= len(out) <= maxVec vectors, with out in registers: one body per
// vector count, each streaming the rows of v with one broadcast of a[t] and
// one FMA per vector (the last one masked). The FMAs into each element run in
// order of t, as a loop of axpy calls would.
func axpyStridedChunk(name string, zmm bool, maxVec int) {
	TEXT(name, NOSPLIT, "func(out, a, v []float32, stride int)")
	g := newVK(zmm)
	Doc(fmt.Sprintf("%s sets out[i] += sum of a[t]*v[t*stride+i] over t, in order of t;", name),
		fmt.Sprintf("1 <= len(out) <= %d and len(a) >= 1.", maxVec*g.lanes))
	op := Load(Param("out").Base(), GP64())
	n := Load(Param("out").Len(), GP64())
	ap := Load(Param("a").Base(), GP64())
	na := Load(Param("a").Len(), GP64())
	vp := Load(Param("v").Base(), GP64())
	s := Load(Param("stride"), GP64())
	SHLQ(U8(2), s)
	nvec := GP64()
	MOVQ(n, nvec)
	ADDQ(U8(g.lanes-1), nvec)
	SHRQ(U8(bitsOf(g.lanes)), nvec)
	rem := GP64()
	MOVQ(nvec, rem)
	DECQ(rem)
	SHLQ(U8(bitsOf(g.lanes)), rem)
	NEGQ(rem)
	ADDQ(n, rem)
	g.setMask(rem) // 1..lanes lanes of the last vector
	for nv := 1; nv < maxVec; nv++ {
		CMPQ(nvec, U8(nv))
		JE(LabelRef(fmt.Sprintf("v%d", nv)))
	}
	JMP(LabelRef(fmt.Sprintf("v%d", maxVec)))

	for nv := 1; nv <= maxVec; nv++ {
		Label(fmt.Sprintf("v%d", nv))
		acc := make([]VecVirtual, nv)
		for j := range acc {
			acc[j] = g.vec()
			g.load(Mem{Base: op, Disp: 4 * g.lanes * j}, acc[j], j == nv-1)
		}
		rp, apc, cnt := GP64(), GP64(), GP64()
		MOVQ(vp, rp)
		MOVQ(ap, apc)
		MOVQ(na, cnt)
		Label(fmt.Sprintf("rows%d", nv))
		av := g.vec()
		VBROADCASTSS(Mem{Base: apc}, av)
		for j := range acc {
			m := Mem{Base: rp, Disp: 4 * g.lanes * j}
			switch {
			case j < nv-1:
				VFMADD231PS(m, av, acc[j])
			case zmm:
				VFMADD231PS(m, av, g.k, acc[j])
			default:
				t := g.vec()
				VMASKMOVPS(m, g.m, t)
				VFMADD231PS(t, av, acc[j])
			}
		}
		ADDQ(U8(4), apc)
		ADDQ(s, rp)
		DECQ(cnt)
		JNZ(LabelRef(fmt.Sprintf("rows%d", nv)))
		for j := range acc {
			g.store(acc[j], Mem{Base: op, Disp: 4 * g.lanes * j}, j == nv-1)
		}
		JMP(LabelRef("done"))
	}
	Label("done")
	VZEROUPPER()
	RET()
}
