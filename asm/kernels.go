// Command asm generates internal/kernels/f32_amd64.s, the AVX2+FMA and AVX-512
// float32 kernels of package model, with avo (github.com/mmcloughlin/avo).
//
// It lives in its own module so that the main module never depends on avo.
// Regenerate with `go generate ./internal/kernels/` from the repository root (see the
// //go:generate line in internal/kernels/f32_amd64.go), or directly:
//
//	cd asm && go run . -out ../internal/kernels/f32_amd64.s -pkg kernels
//
// The Go declarations are hand-written in internal/kernels/f32_amd64.go; the
// signatures below must match them (go vet's asmdecl check verifies that).
//
// Conventions used throughout:
//   - Elements are float32, so a slice index i addresses (base)(i*4).
//   - Accumulators are independent registers so that consecutive FMAs do not
//     wait on each other: Zen 5 retires two FMAs per cycle with a latency of
//     four, so at least eight independent accumulation chains keep it busy.
//   - Tails shorter than one vector use masked loads: AVX-512 opmask
//     registers (the load is suppressed, so reading past the end cannot
//     fault) or VMASKMOVPS on AVX2. The simple element-wise AVX2 kernels use
//     scalar tail loops instead.
package main

import (
	"github.com/mmcloughlin/avo/gotypes"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

var (
	// mask16 is the AVX-512 tail-mask table: entry r (uint16, 0 <= r <= 16)
	// has the low r bits set, selecting the first r lanes of a zmm register.
	mask16 Mem
	// mask8 is the AVX2 tail-mask table: 8 all-ones int32 followed by 8
	// zeros. The 8 dwords starting at element 8-r select the first r lanes.
	mask8 Mem
)

func main() {
	ConstraintExpr("amd64,!purego")

	mask16 = GLOBL("tailmask16", RODATA|NOPTR)
	for r := 0; r <= 16; r++ {
		DATA(2*r, U16(1<<r-1))
	}
	mask8 = GLOBL("tailmask8", RODATA|NOPTR)
	for r := 0; r < 16; r++ {
		v := uint32(0)
		if r < 8 {
			v = 0xffffffff
		}
		DATA(4*r, U32(v))
	}

	cpuidGen()
	dotAVX2()
	dotAVX512()
	axpyAVX2()
	axpyAVX512()
	scaleMulAVX2()
	scaleMulAVX512()
	matVec4AVX2()
	matVec4StepsAVX2()
	matVec4AVX512()
	matMat4x2AVX2()
	matMat8x3AVX512()
	matMat8x2AVX512()
	matMat8x1AVX512()

	expConstants()
	siluMul("siluMulAVX2", false)
	siluMul("siluMulAVX512", true)
	expSubSum("expSubSumAVX2", false)
	expSubSum("expSubSumAVX512", true)
	maxf("maxfAVX2", false)
	maxf("maxfAVX512", true)
	divScalar("divScalarAVX2", false)
	divScalar("divScalarAVX512", true)
	dotStrided("dotStrided8AVX2", false, 8)
	dotStrided("dotStrided4AVX2", false, 4)
	dotStrided("dotStrided8AVX512", true, 8)
	dotStrided("dotStrided4AVX512", true, 4)
	axpyStridedChunk("axpyStridedChunkAVX2", false, 8)
	axpyStridedChunk("axpyStridedChunkAVX512", true, 8)
	quantizeGroups()

	Generate()
}

// addr is the stack address of an argument, for instructions that take a
// memory operand directly (VBROADCASTSS).
func addr(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// at addresses element index i of the float32 array at base, plus off elements.
func at(base, i Register, off int) Mem {
	return Mem{Base: base, Index: i, Scale: 4, Disp: 4 * off}
}

// loadMask16 sets k to select the first rem lanes (rem <= 16) of a zmm.
func loadMask16(rem Register, k Register) {
	tbl := GP64()
	LEAQ(mask16, tbl)
	KMOVW(Mem{Base: tbl, Index: rem, Scale: 2}, k)
}

// loadMask8 returns a ymm mask selecting the first rem lanes (rem <= 8);
// rem is clobbered.
func loadMask8(rem Register) VecVirtual {
	tbl := GP64()
	LEAQ(mask8.Offset(32), tbl)
	NEGQ(rem)
	m := YMM()
	VMOVDQU(Mem{Base: tbl, Index: rem, Scale: 4}, m)
	return m
}

// zero clears vector registers. VPXORD on the zmm forms needs only AVX-512F.
func zero(zmm bool, regs ...VecVirtual) {
	for _, r := range regs {
		if zmm {
			VPXORD(r, r, r)
		} else {
			VXORPS(r, r, r)
		}
	}
}

// toXMM folds a ymm or zmm accumulator into an xmm with four partial sums.
// The zmm variant sticks to EVEX-encodable instructions because the register
// allocator may hand out X16-X31, which VEX encodings cannot address.
func toXMM(acc VecVirtual, zmm bool) VecVirtual {
	x := XMM()
	if zmm {
		t := YMM()
		VEXTRACTF64X4(U8(1), acc, t)
		VADDPS(t, acc.AsY(), t)
		VEXTRACTF32X4(U8(1), t, x)
		VADDPS(x, t.AsX(), x)
	} else {
		VEXTRACTF128(U8(1), acc, x)
		VADDPS(x, acc.AsX(), x)
	}
	return x
}

// hsum4 returns an xmm holding [Σa0, Σa1, Σa2, Σa3]: each accumulator is
// folded to four lanes, then a 4x4 transpose-and-add combines them into one
// register, so that four results cost a single store. (Unpack/move shuffles
// rather than VHADDPS, which has no EVEX form; see toXMM.)
func hsum4(acc [4]VecVirtual, zmm bool) Register {
	var x [4]VecVirtual
	for r := range acc {
		x[r] = toXMM(acc[r], zmm)
	}
	pair := func(a, b VecVirtual) VecVirtual {
		lo, hi := XMM(), XMM()
		VUNPCKLPS(b, a, lo) // [a0 b0 a1 b1]
		VUNPCKHPS(b, a, hi) // [a2 b2 a3 b3]
		VADDPS(hi, lo, lo)  // [a02 b02 a13 b13]
		return lo
	}
	ab, cd := pair(x[0], x[1]), pair(x[2], x[3])
	lo, hi := XMM(), XMM()
	VMOVLHPS(cd, ab, lo) // [a02 b02 c02 d02]
	VMOVHLPS(ab, cd, hi) // [a13 b13 c13 d13]
	VADDPS(hi, lo, lo)
	return lo
}

// hsum1 returns an xmm whose lane 0 is the sum of all lanes of acc.
func hsum1(acc VecVirtual, zmm bool) Register {
	x := toXMM(acc, zmm)
	t := XMM()
	VMOVHLPS(x, x, t) // [x2 x3 . .]
	VADDPS(t, x, x)
	VMOVSHDUP(x, t) // [x1 . . .]
	VADDSS(t, x, x)
	return x
}

func dotAVX2() {
	TEXT("dotAVX2", NOSPLIT, "func(x, y []float32) float32")
	Doc("dotAVX2 returns the sum of x[i]*y[i]; len(y) >= len(x).")
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())

	var acc [4]VecVirtual
	for k := range acc {
		acc[k] = YMM()
	}
	zero(false, acc[:]...)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	Comment("32 floats per iteration: four independent accumulators.")
	MOVQ(n, end)
	ANDQ(I32(-32), end)
	Label("loop32")
	CMPQ(i, end)
	JAE(LabelRef("loop8"))
	for k := range acc {
		t := YMM()
		VMOVUPS(at(xp, i, 8*k), t)
		VFMADD231PS(at(yp, i, 8*k), t, acc[k])
	}
	ADDQ(U8(32), i)
	JMP(LabelRef("loop32"))

	Label("loop8")
	MOVQ(n, end)
	ANDQ(I32(-8), end)
	Label("loop8body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	t := YMM()
	VMOVUPS(at(xp, i, 0), t)
	VFMADD231PS(at(yp, i, 0), t, acc[0])
	ADDQ(U8(8), i)
	JMP(LabelRef("loop8body"))

	Label("tail")
	Comment("Fewer than 8 left: scalar FMAs into their own xmm (a VEX scalar op",
		"would clear the upper half of a ymm accumulator).")
	tacc := XMM()
	VXORPS(tacc, tacc, tacc)
	Label("tailloop")
	CMPQ(i, n)
	JAE(LabelRef("reduce"))
	s := XMM()
	VMOVSS(at(xp, i, 0), s)
	VFMADD231SS(at(yp, i, 0), s, tacc)
	INCQ(i)
	JMP(LabelRef("tailloop"))

	Label("reduce")
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	sum := hsum1(acc[0], false)
	VADDSS(tacc, sum, sum)
	VZEROUPPER()
	Store(sum, ReturnIndex(0))
	RET()
}

func dotAVX512() {
	TEXT("dotAVX512", NOSPLIT, "func(x, y []float32) float32")
	Doc("dotAVX512 returns the sum of x[i]*y[i]; len(y) >= len(x).")
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())

	var acc [4]VecVirtual
	for k := range acc {
		acc[k] = ZMM()
	}
	zero(true, acc[:]...)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	Comment("64 floats per iteration: four independent accumulators.")
	MOVQ(n, end)
	ANDQ(I32(-64), end)
	Label("loop64")
	CMPQ(i, end)
	JAE(LabelRef("loop16"))
	for k := range acc {
		t := ZMM()
		VMOVUPS(at(xp, i, 16*k), t)
		VFMADD231PS(at(yp, i, 16*k), t, acc[k])
	}
	ADDQ(U8(64), i)
	JMP(LabelRef("loop64"))

	Label("loop16")
	MOVQ(n, end)
	ANDQ(I32(-16), end)
	Label("loop16body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	t := ZMM()
	VMOVUPS(at(xp, i, 0), t)
	VFMADD231PS(at(yp, i, 0), t, acc[0])
	ADDQ(U8(16), i)
	JMP(LabelRef("loop16body"))

	Label("tail")
	Comment("Fewer than 16 left: one masked step. Masked-off lanes are neither",
		"loaded (no fault past the end) nor changed in the accumulator.")
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef("reduce"))
	k := K()
	loadMask16(rem, k)
	t2 := ZMM()
	VMOVUPS_Z(at(xp, i, 0), k, t2)
	VFMADD231PS(at(yp, i, 0), t2, k, acc[1])

	Label("reduce")
	VADDPS(acc[1], acc[0], acc[0])
	VADDPS(acc[3], acc[2], acc[2])
	VADDPS(acc[2], acc[0], acc[0])
	sum := hsum1(acc[0], true)
	VZEROUPPER()
	Store(sum, ReturnIndex(0))
	RET()
}

func axpyAVX2() {
	TEXT("axpyAVX2", NOSPLIT, "func(a float32, x, y []float32)")
	Doc("axpyAVX2 sets y[i] += a*x[i] for i < len(x); len(y) >= len(x).")
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	a := YMM()
	VBROADCASTSS(addr(Param("a")), a)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	MOVQ(n, end)
	ANDQ(I32(-32), end)
	Label("loop32")
	CMPQ(i, end)
	JAE(LabelRef("loop8"))
	var t [4]VecVirtual
	for k := range t {
		t[k] = YMM()
		VMOVUPS(at(yp, i, 8*k), t[k])
		VFMADD231PS(at(xp, i, 8*k), a, t[k])
	}
	for k := range t {
		VMOVUPS(t[k], at(yp, i, 8*k))
	}
	ADDQ(U8(32), i)
	JMP(LabelRef("loop32"))

	Label("loop8")
	MOVQ(n, end)
	ANDQ(I32(-8), end)
	Label("loop8body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	u := YMM()
	VMOVUPS(at(yp, i, 0), u)
	VFMADD231PS(at(xp, i, 0), a, u)
	VMOVUPS(u, at(yp, i, 0))
	ADDQ(U8(8), i)
	JMP(LabelRef("loop8body"))

	Label("tail")
	CMPQ(i, n)
	JAE(LabelRef("done"))
	s := XMM()
	VMOVSS(at(yp, i, 0), s)
	VFMADD231SS(at(xp, i, 0), a.AsX(), s)
	VMOVSS(s, at(yp, i, 0))
	INCQ(i)
	JMP(LabelRef("tail"))

	Label("done")
	VZEROUPPER()
	RET()
}

func axpyAVX512() {
	TEXT("axpyAVX512", NOSPLIT, "func(a float32, x, y []float32)")
	Doc("axpyAVX512 sets y[i] += a*x[i] for i < len(x); len(y) >= len(x).")
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	a := ZMM()
	VBROADCASTSS(addr(Param("a")), a)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	MOVQ(n, end)
	ANDQ(I32(-64), end)
	Label("loop64")
	CMPQ(i, end)
	JAE(LabelRef("loop16"))
	var t [4]VecVirtual
	for k := range t {
		t[k] = ZMM()
		VMOVUPS(at(yp, i, 16*k), t[k])
		VFMADD231PS(at(xp, i, 16*k), a, t[k])
	}
	for k := range t {
		VMOVUPS(t[k], at(yp, i, 16*k))
	}
	ADDQ(U8(64), i)
	JMP(LabelRef("loop64"))

	Label("loop16")
	MOVQ(n, end)
	ANDQ(I32(-16), end)
	Label("loop16body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	u := ZMM()
	VMOVUPS(at(yp, i, 0), u)
	VFMADD231PS(at(xp, i, 0), a, u)
	VMOVUPS(u, at(yp, i, 0))
	ADDQ(U8(16), i)
	JMP(LabelRef("loop16body"))

	Label("tail")
	Comment("Masked step: lanes past the end are neither loaded nor stored.")
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef("done"))
	k := K()
	loadMask16(rem, k)
	v := ZMM()
	VMOVUPS_Z(at(yp, i, 0), k, v)
	VFMADD231PS(at(xp, i, 0), a, k, v)
	VMOVUPS(v, k, at(yp, i, 0))

	Label("done")
	VZEROUPPER()
	RET()
}

func scaleMulAVX2() {
	TEXT("scaleMulAVX2", NOSPLIT, "func(out, w, x []float32, s float32)")
	Doc("scaleMulAVX2 sets out[i] = w[i] * (s * x[i]); len(w), len(x) >= len(out).")
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("out").Len(), GP64())
	s := YMM()
	VBROADCASTSS(addr(Param("s")), s)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	Comment("Two separate multiplies (no FMA) keep the rounding of w*(s*x).")
	MOVQ(n, end)
	ANDQ(I32(-32), end)
	Label("loop32")
	CMPQ(i, end)
	JAE(LabelRef("loop8"))
	for k := 0; k < 4; k++ {
		t := YMM()
		VMULPS(at(xp, i, 8*k), s, t)
		VMULPS(at(wp, i, 8*k), t, t)
		VMOVUPS(t, at(op, i, 8*k))
	}
	ADDQ(U8(32), i)
	JMP(LabelRef("loop32"))

	Label("loop8")
	MOVQ(n, end)
	ANDQ(I32(-8), end)
	Label("loop8body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	u := YMM()
	VMULPS(at(xp, i, 0), s, u)
	VMULPS(at(wp, i, 0), u, u)
	VMOVUPS(u, at(op, i, 0))
	ADDQ(U8(8), i)
	JMP(LabelRef("loop8body"))

	Label("tail")
	CMPQ(i, n)
	JAE(LabelRef("done"))
	v := XMM()
	VMULSS(at(xp, i, 0), s.AsX(), v)
	VMULSS(at(wp, i, 0), v, v)
	VMOVSS(v, at(op, i, 0))
	INCQ(i)
	JMP(LabelRef("tail"))

	Label("done")
	VZEROUPPER()
	RET()
}

func scaleMulAVX512() {
	TEXT("scaleMulAVX512", NOSPLIT, "func(out, w, x []float32, s float32)")
	Doc("scaleMulAVX512 sets out[i] = w[i] * (s * x[i]); len(w), len(x) >= len(out).")
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("out").Len(), GP64())
	s := ZMM()
	VBROADCASTSS(addr(Param("s")), s)
	i := GP64()
	XORQ(i, i)
	end := GP64()

	Comment("Two separate multiplies (no FMA) keep the rounding of w*(s*x).")
	MOVQ(n, end)
	ANDQ(I32(-64), end)
	Label("loop64")
	CMPQ(i, end)
	JAE(LabelRef("loop16"))
	for k := 0; k < 4; k++ {
		t := ZMM()
		VMULPS(at(xp, i, 16*k), s, t)
		VMULPS(at(wp, i, 16*k), t, t)
		VMOVUPS(t, at(op, i, 16*k))
	}
	ADDQ(U8(64), i)
	JMP(LabelRef("loop64"))

	Label("loop16")
	MOVQ(n, end)
	ANDQ(I32(-16), end)
	Label("loop16body")
	CMPQ(i, end)
	JAE(LabelRef("tail"))
	u := ZMM()
	VMULPS(at(xp, i, 0), s, u)
	VMULPS(at(wp, i, 0), u, u)
	VMOVUPS(u, at(op, i, 0))
	ADDQ(U8(16), i)
	JMP(LabelRef("loop16body"))

	Label("tail")
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef("done"))
	k := K()
	loadMask16(rem, k)
	xv, wv := ZMM(), ZMM()
	VMOVUPS_Z(at(xp, i, 0), k, xv)
	VMOVUPS_Z(at(wp, i, 0), k, wv)
	VMULPS(xv, s, xv)
	VMULPS(wv, xv, xv)
	VMOVUPS(xv, k, at(op, i, 0))

	Label("done")
	VZEROUPPER()
	RET()
}

// cpuidGen generates cpuid, the CPUID instruction: the processor's vendor,
// family and model pick the kernels' per-CPU table (internal/kernels/cpu.go);
// golang.org/x/sys/cpu reads only the feature bits.
func cpuidGen() {
	TEXT("cpuid", NOSPLIT, "func(leaf, sub uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid executes CPUID with EAX = leaf and ECX = sub.")
	Load(Param("leaf"), EAX)
	Load(Param("sub"), ECX)
	CPUID()
	Store(EAX, Return("eax"))
	Store(EBX, Return("ebx"))
	Store(ECX, Return("ecx"))
	Store(EDX, Return("edx"))
	RET()
}
