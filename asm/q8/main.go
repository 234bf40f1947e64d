// Command q8 generates internal/kernels/q8_amd64.s, the Q8_0 (int8) matrix-
// vector kernels of package model, and the tile kernel of batched prompts
// (tile.go), with avo (github.com/mmcloughlin/avo).
//
//	cd asm && go run ./q8 -out ../internal/kernels/q8_amd64.s -pkg kernels
//
// (or `go generate ./internal/kernels/`, see internal/kernels/q8_amd64.go). The Go
// declarations, with the loop each routine computes, are hand-written in
// internal/kernels/q8_amd64.go; go vet's asmdecl check compares the signatures.
//
// # What the kernels compute
//
// Every kernel takes 4 rows of a Q8_0 weight matrix at a time, a quarter of
// the rows apart (rows i, q+i, 2q+i and 3q+i of 4q rows, see Speed), all of
// whose groups lie inside their row (the Go driver checks n%gs == 0 and
// off%gs == 0), and computes for each row exactly what the plain loop
// dotQ8 does:
//
//	for g := range groups {
//		sum := int32 dot product of group g of the row and of x
//		total += float32(sum) * ws[row, g] * xs[g]    // rounded after each op
//	}
//
// The int32 sums are exact whatever the order of their additions. The float
// part keeps the 4 rows in the 4 lanes of an xmm accumulator (or the even
// lanes of a ymm one), so each row's total is built by the same roundings in
// the same order as in Go: convert, multiply by the weight scale, multiply
// by the activation scale, add (two multiplies and an add, never an FMA).
// The results are therefore bit-identical to the plain Go loop.
//
// # Signed by signed bytes
//
// Both VPDPBUSD (AVX-512 VNNI) and VPMADDUBSW (AVX2) multiply unsigned bytes
// by signed bytes. The activation is used as |x| (unsigned) and the sign of
// x moves to the weight: w*x = (sign(x)*w) * |x|. The quantizer never emits
// -128 (|x/scale| <= 127), so |x| fits; a weight of -128 (only in a crafted
// file) facing a negative x flips to -128 instead of +128: a wrong value, no
// fault. On AVX2, VPMADDUBSW adds pairs of products into int16: with
// |x| <= 127 and |w| <= 128 a pair is at most 2*127*128 = 32512 < 32767, so
// nothing saturates (only a crafted -128 activation could).
//
// # Horizontal sums
//
// After the multiplies each row's group sum is spread over the dword lanes
// of its accumulator. Four rows are folded together with in-lane shuffles
// (unpack low/high quadwords, then shufps) into one register whose every
// 128-bit lane holds [row0 row1 row2 row3] partial sums, then the 128-bit
// lanes belonging to one group are added.
//
// # Speed
//
// Per 4 rows and 64 bytes the VNNI kernels issue about 30 vector uops, all
// on ports 0 and 5 (512-bit operations): 10 for the products (the sign
// flip and VPDPBUSD per row), the rest for the folds and the float part.
// From L2 that is about 15 bytes per cycle (35-45 GB/s per core); from L3
// and memory the loads are the limit.
//
// Memory is read faster as 4 streams far apart than as 4 adjacent rows
// (which the kernels took before: one stream of 4 rows, jumping 3 rows at
// the end of each block, with the block after the next prefetched): hence
// rows a quarter of the matrix apart, each row's stream running on into
// the next row, and 4 scale streams. Each is prefetched prefetchDist
// (scalePrefetch) bytes ahead into L1; much further would flush L1 (4
// streams 12 KiB ahead are 48 KiB). On the 2-core Zen 5 VM, 1 thread, VNNI,
// GB/s, medians of 7 runs alternating with the adjacent-row kernels: from
// memory, streaming 560 MB of 5632x2048 matrices, gs 64 18.4 -> 31.7 and
// gs 32 18.4 -> 26.4; 2048x768 gs 32 20.5 -> 31.4. From L3, 13 MB of
// 768x288 gs 32 39 -> 44 and 12.6 MB of 1024x2048 gs 64 45 -> 44 (noise
// +-15%). BenchmarkMatVecQ8, VNNI and AVX2: 32000x768 1.2-1.4x, the
// others 0.91-1.06x. With the prefetch 12 KiB ahead (as the GGUF kernels
// have) memory gained less (1.2-1.5x) and L2 and L3 were 0.6-0.8x of
// before; with none at all, L3 lost up to 20%, and memory up to a third
// while another process was loading it.
//
// Summing each row in float lanes and reducing once per row (not bit-exact)
// would save about a quarter of the uops, which only shows from L2.
package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// permPairs is the VPERMD index of the gs=32 VNNI kernel (see vnni32).
var permPairs Mem

func main() {
	ConstraintExpr("amd64,!purego")

	permPairs = GLOBL("q8permpairs", RODATA|NOPTR)
	for i, v := range []uint32{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15} {
		DATA(4*i, U32(v))
	}

	bcastTokens = GLOBL("q8bcasttokens", RODATA|NOPTR)
	for i := range 16 {
		DATA(4*i, U32(i/4))
	}

	for _, pf := range vnniPrefetches {
		vnni32(pf)
		vnni64(pf)
	}
	vnniTile()
	avx2()

	Generate()
}

// vpdpbusd emits VPDPBUSD s8, u8, acc (Go operand order): for each dword
// lane, acc += sum of the 4 products of the unsigned bytes of u8 with the
// signed bytes of s8. avo v0.5.0's instruction table predates AVX-512 VNNI,
// so the instruction is built by hand (the Go assembler knows it).
func vpdpbusd(s8, u8, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Operands: []Op{s8, u8, acc},
		Inputs:   []Op{s8, u8, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

// kernel holds the registers shared by the three kernels' prologues.
type kernel struct {
	q        gpr // passes left: q = len(out)/4 in all
	qn, qn3  gpr // q*n and 3*q*n: bytes between the pass's 4 rows
	qg, qg3  gpr // q*ng*4 and 3*q*ng*4: bytes between their scales
	op       gpr // out[i] of pass i
	wpi, xpi gpr // moving pointers into row i and x
	sg, xsg  gpr // moving pointers to row i's and x's current scale
	gleft    gpr // groups left in the row
	pf       int // how far ahead (bytes) the rows' streams are prefetched
}

type gpr = Register

// prefetchDist is how far ahead (bytes) each of the 4 rows' streams is
// prefetched (PREFETCHT0 per row and step: a row's stream runs on into the
// next passes' rows, 1 to 7 rows ahead for rows of 2048 to 288 bytes), and
// scalePrefetch how far ahead each row's scales are, once per pass (every
// line of the scales of rows up to 16 groups; longer rows' scales are left
// to the hardware prefetchers). See the package comment (Speed).
var prefetchDist, scalePrefetch = 2048, 256

// vnniPrefetches are the distances the VNNI kernels are generated for, the
// values the per-CPU table may pick (internal/kernels/tuning.go):
// matVecQ8x4VNNI{32,64} prefetchDist bytes ahead, the P0 variants not at
// all (Zen 4's choice).
var vnniPrefetches = []int{prefetchDist, 0}

// suffix names a kernel's variant for prefetch distance pf.
func suffix(pf int) string {
	if pf == prefetchDist {
		return ""
	}
	return fmt.Sprintf("P%d", pf)
}

func prologue(name, doc string, pf int) *kernel {
	TEXT(name, NOSPLIT, "func(out []float32, w []int8, ws []float32, x []int8, xs []float32, gs int)")
	Doc(name+" "+doc, "The caller guarantees the preconditions; see internal/kernels/q8_amd64.go.")
	k := &kernel{pf: pf}
	Comment("q = len(out)/4: rows i, q+i, 2q+i and 3q+i (i < q) go together.")
	k.q = Load(Param("out").Len(), GP64())
	SHRQ(U8(2), k.q)
	TESTQ(k.q, k.q)
	JZ(LabelRef("done"))
	k.wpi = Load(Param("w").Base(), GP64())
	k.sg = Load(Param("ws").Base(), GP64())
	k.op = Load(Param("out").Base(), GP64())
	k.qn = Load(Param("x").Len(), GP64())
	IMULQ(k.q, k.qn)
	k.qn3 = GP64()
	LEAQ(Mem{Base: k.qn, Index: k.qn, Scale: 2}, k.qn3)
	k.qg = Load(Param("xs").Len(), GP64())
	IMULQ(k.q, k.qg)
	SHLQ(U8(2), k.qg)
	k.qg3 = GP64()
	LEAQ(Mem{Base: k.qg, Index: k.qg, Scale: 2}, k.qg3)
	k.xpi, k.xsg, k.gleft = GP64(), GP64(), GP64()
	return k
}

// at addresses byte off of row r of the pass from base, the rows stride
// and stride3 bytes apart.
func at(base, stride, stride3 gpr, r, off int) Mem {
	switch r {
	case 0:
		return Mem{Base: base, Disp: off}
	case 1:
		return Mem{Base: base, Index: stride, Scale: 1, Disp: off}
	case 2:
		return Mem{Base: base, Index: stride, Scale: 2, Disp: off}
	}
	return Mem{Base: base, Index: stride3, Scale: 1, Disp: off}
}

// row addresses byte off of row r of the pass at the moving pointer.
func (k *kernel) row(r, off int) Mem { return at(k.wpi, k.qn, k.qn3, r, off) }

// scale addresses the weight scale of row r for the current group (+off bytes).
func (k *kernel) scale(r, off int) Mem { return at(k.sg, k.qg, k.qg3, r, off) }

// blockStart sets the moving pointers of x to the start of a pass (wpi and
// sg are already at row i's start).
func (k *kernel) blockStart() {
	Comment("Values needed once per pass are reloaded from the arguments.")
	Load(Param("x").Base(), k.xpi)
	Load(Param("xs").Base(), k.xsg)
	Load(Param("xs").Len(), k.gleft)
	if scalePrefetch > 0 {
		for r := range 4 {
			PREFETCHT0(k.scale(r, scalePrefetch))
		}
	}
}

// prefetch fetches each of the 4 rows' streams k.pf bytes ahead of byte
// off of the moving pointer. Past the end of w the prefetches are harmless
// (they never fault).
func (k *kernel) prefetch(off int) {
	if k.pf == 0 {
		return
	}
	for r := range 4 {
		PREFETCHT0(k.row(r, off+k.pf))
	}
}

// store writes the pass's four results from an xmm to out[i], out[q+i],
// out[2q+i] and out[3q+i], and moves to out[i+1].
func (k *kernel) store(res Register) {
	q4 := GP64()
	Load(Param("out").Len(), q4)
	ANDQ(I8(-4), q4) // 4q: bytes between the rows' outputs
	VMOVSS(res, Mem{Base: k.op})
	VEXTRACTPS(U8(1), res, Mem{Base: k.op, Index: q4, Scale: 1})
	VEXTRACTPS(U8(2), res, Mem{Base: k.op, Index: q4, Scale: 2})
	LEAQ(Mem{Base: q4, Index: q4, Scale: 2}, q4)
	VEXTRACTPS(U8(3), res, Mem{Base: k.op, Index: q4, Scale: 1})
	ADDQ(U8(4), k.op)
}

// blockEnd loops to the next pass; label done follows it. At the end of a
// pass wpi and sg have moved through row i to the start of row i+1 (or its
// scales), which is the next pass's first row.
func (k *kernel) blockEnd(loop string) {
	DECQ(k.q)
	JNZ(LabelRef(loop))
	Label("done")
}

// steps loads gs >> shift into cnt.
func steps(cnt Register, shift int) {
	Load(Param("gs"), cnt)
	SHRQ(U8(shift), cnt)
}

// fold4 adds the dword lanes of four row accumulators (any width) so that
// each 128-bit lane of the result holds [Σa Σb Σc Σd] over that lane.
// The inputs are clobbered.
func fold4(a [4]VecVirtual, zmm bool) VecVirtual {
	pair := func(x, y VecVirtual) VecVirtual {
		lo := tmpLike(x, zmm)
		VPUNPCKLQDQ(y, x, lo) // [x0 x1 y0 y1]
		VPUNPCKHQDQ(y, x, x)  // [x2 x3 y2 y3]
		VPADDD(x, lo, lo)     // [x02 x13 y02 y13]
		return lo
	}
	ab, cd := pair(a[0], a[1]), pair(a[2], a[3])
	t := tmpLike(ab, zmm)
	VSHUFPS(U8(0x88), cd, ab, t)  // [ab0 ab2 cd0 cd2]
	VSHUFPS(U8(0xdd), cd, ab, ab) // [ab1 ab3 cd1 cd3]
	VPADDD(ab, t, t)
	return t
}

func tmpLike(_ VecVirtual, zmm bool) VecVirtual {
	if zmm {
		return ZMM()
	}
	return YMM()
}

// loadScales4 loads the 4 rows' weight scales of the current group into an
// xmm [s0 s1 s2 s3] with merge-masked broadcasts (AVX-512) or VINSERTPS.
func (k *kernel) loadScales4(masks []Register) VecVirtual {
	if masks == nil {
		w := XMM()
		VMOVSS(k.scale(0, 0), w)
		for r := 1; r < 4; r++ {
			VINSERTPS(U8(r<<4), k.scale(r, 0), w, w)
		}
		return w
	}
	// (avo lacks the masked xmm broadcast; the ymm one writes the same lane.)
	w := YMM()
	VMOVSS(k.scale(0, 0), w.AsX())
	for r := 1; r < 4; r++ {
		VBROADCASTSS(k.scale(r, 0), masks[r-1], w)
	}
	return w.AsX().(VecVirtual)
}

// rowMasks returns opmasks selecting element 1, 2 and 3.
func rowMasks() []Register {
	t := GP32()
	var ks []Register
	for r := 1; r < 4; r++ {
		k := K()
		MOVL(U32(1<<r), t)
		KMOVB(t, k)
		ks = append(ks, k)
	}
	return ks
}

// vnniStep loads 64 bytes (or 32 with ymm) of x and of the 4 rows at byte
// offset off of the moving pointers and accumulates the products into acc.
func (k *kernel) vnniStep(acc [4]VecVirtual, zero Register, vec func() VecVirtual, off int) {
	xv, xa := vec(), vec()
	sign := K()
	k.prefetch(off)
	VMOVDQU64(Mem{Base: k.xpi, Disp: off}, xv)
	VPMOVB2M(xv, sign)
	VPABSB(xv, xa)
	for r := range acc {
		t := vec()
		VMOVDQU64(k.row(r, off), t)
		VPSUBB(t, zero, sign, t) // t = -t where x < 0
		vpdpbusd(t, xa, acc[r])
	}
}

// vnni64 generates the kernel for group sizes that are multiples of 64:
// each group takes gs/64 zmm steps per row, its four sums are folded into an
// xmm and scaled into the xmm accumulator [row0 row1 row2 row3].
func vnni64(pf int) {
	k := prologue("matVecQ8x4VNNI64"+suffix(pf), "is the VNNI kernel for group sizes that are multiples of 64.", pf)
	masks := rowMasks()
	zero := ZMM()
	VPXORD(zero, zero, zero)
	cnt := GP64()

	Label("block")
	k.blockStart()
	acc := XMM()
	VXORPS(acc, acc, acc)

	Label("group")
	var a [4]VecVirtual
	for r := range a {
		a[r] = ZMM()
		VPXORD(a[r], a[r], a[r])
	}
	steps(cnt, 6)
	Label("step")
	k.vnniStep(a, zero, ZMM, 0)
	ADDQ(U8(64), k.xpi)
	ADDQ(U8(64), k.wpi)
	DECQ(cnt)
	JNZ(LabelRef("step"))

	Comment("Fold the four rows' lanes, then the four 128-bit lanes.")
	s := fold4(a, true)
	h := YMM()
	VEXTRACTI64X4(U8(1), s, h)
	VPADDD(h, s.AsY(), h)
	x := XMM()
	VEXTRACTI32X4(U8(1), h, x)
	VPADDD(x, h.AsX(), x)
	k.scaleAdd(x, acc, masks)
	DECQ(k.gleft)
	JNZ(LabelRef("group"))

	k.store(acc)
	k.blockEnd("block")
	VZEROUPPER()
	RET()
}

// scaleAdd converts the int32 sums [s0 s1 s2 s3] of the current group to
// float, multiplies by the rows' weight scales and by the activation scale
// and adds into acc, then moves the scale pointers to the next group.
func (k *kernel) scaleAdd(sums, acc VecVirtual, masks []Register) {
	f := XMM()
	VCVTDQ2PS(sums, f)
	w := k.loadScales4(masks)
	VMULPS(w, f, f)
	b := XMM()
	VBROADCASTSS(Mem{Base: k.xsg}, b)
	VMULPS(b, f, f)
	VADDPS(f, acc, acc)
	ADDQ(U8(4), k.sg)
	ADDQ(U8(4), k.xsg)
}

// vnni32 generates the kernel for gs = 32: each zmm step covers two groups
// (g in the low 256 bits, g+1 in the high). The four rows' sums are folded
// and permuted into a ymm [a_g a_g1 b_g b_g1 c_g c_g1 d_g d_g1], which is the
// order the weight scales have in memory (two consecutive floats per row),
// so each row's scale pair is one 8-byte broadcast and the activation scale
// pair one more. The accumulator is a ymm whose even lanes hold the rows:
// adding the products adds group g into them, and adding the products
// shifted right by 32 bits within each quadword then adds group g+1: the
// same order as the plain loop. (The odd lanes collect garbage.) An odd last
// group takes one ymm step.
func vnni32(pf int) {
	k := prologue("matVecQ8x4VNNI32"+suffix(pf), "is the VNNI kernel for gs = 32.", pf)
	masks := rowMasks()
	zero := ZMM()
	VPXORD(zero, zero, zero)
	perm := ZMM()
	VMOVDQU64(permPairs, perm)

	Label("block")
	k.blockStart()
	acc := YMM()
	VXORPS(acc, acc, acc)
	CMPQ(k.gleft, U8(2))
	JB(LabelRef("single"))

	Label("pair")
	var a [4]VecVirtual
	for r := range a {
		a[r] = ZMM()
		VPXORD(a[r], a[r], a[r])
	}
	k.vnniStep(a, zero, ZMM, 0)
	ADDQ(U8(64), k.xpi)
	ADDQ(U8(64), k.wpi)
	Comment("Fold; lane q of s is [a b c d] of 128-bit quarter q (q0, q1: group g).",
		"Permute to [a0 a2 b0 b2 c0 c2 d0 d2 | a1 a3 b1 b3 c1 c3 d1 d3] and add the halves.")
	s := fold4(a, true)
	VPERMD(s, perm, s)
	h := YMM()
	VEXTRACTI64X4(U8(1), s, h)
	VPADDD(h, s.AsY(), h)
	f := YMM()
	VCVTDQ2PS(h, f)
	w := YMM()
	VMOVSD(k.scale(0, 0), w.AsX())
	for r := 1; r < 4; r++ {
		VBROADCASTSD(k.scale(r, 0), masks[r-1], w)
	}
	VMULPS(w, f, f)
	b := YMM()
	VBROADCASTSD(Mem{Base: k.xsg}, b)
	VMULPS(b, f, f)
	VADDPS(f, acc, acc)
	VPSRLQ(U8(32), f, f)
	VADDPS(f, acc, acc)
	ADDQ(U8(8), k.sg)
	ADDQ(U8(8), k.xsg)
	SUBQ(U8(2), k.gleft)
	CMPQ(k.gleft, U8(2))
	JAE(LabelRef("pair"))

	Label("single")
	TESTQ(k.gleft, k.gleft)
	JZ(LabelRef("store"))
	{
		var a [4]VecVirtual
		for r := range a {
			a[r] = YMM()
			VPXORD(a[r], a[r], a[r])
		}
		k.vnniStep(a, zero.AsY(), YMM, 0)
		ADDQ(U8(32), k.wpi)
		s := fold4(a, false)
		x := XMM()
		VEXTRACTI32X4(U8(1), s, x)
		VPADDD(x, s.AsX(), x)
		f := XMM()
		VCVTDQ2PS(x, f)
		w := k.loadScales4(masks)
		VMULPS(w, f, f)
		b := XMM()
		VBROADCASTSS(Mem{Base: k.xsg}, b)
		VMULPS(b, f, f)
		Comment("To the even lanes of a ymm, as the accumulator keeps them.")
		e := YMM()
		VPMOVZXDQ(f, e)
		VADDPS(e, acc, acc)
		ADDQ(U8(4), k.sg)
	}

	Label("store")
	Comment("Even lanes of acc: [a . b . | c . d .] -> [a b c d].")
	hi := XMM()
	VEXTRACTF128(U8(1), acc, hi)
	VSHUFPS(U8(0x88), hi, acc.AsX(), hi)
	k.store(hi)
	k.blockEnd("block")
	VZEROUPPER()
	RET()
}

// avx2 generates the AVX2 kernel for group sizes that are multiples of 32:
// per 32 bytes and row, VPSIGNB moves x's sign onto w, VPMADDUBSW multiplies
// by |x| into int16 pairs and VPMADDWD by ones widens to int32 lanes. Three
// VPHADDD fold the four rows.
func avx2() {
	k := prologue("matVecQ8x4AVX2", "is the AVX2 kernel for group sizes that are multiples of 32.", prefetchDist)
	ones := YMM()
	VPCMPEQW(ones, ones, ones)
	VPSRLW(U8(15), ones, ones)
	cnt := GP64()

	Label("block")
	k.blockStart()
	acc := XMM()
	VXORPS(acc, acc, acc)

	Label("group")
	Comment("The group's first 32 bytes set the accumulators, the others add.")
	var a [4]VecVirtual
	for r := range a {
		a[r] = YMM()
	}
	step := func(first bool) {
		xv, xa := YMM(), YMM()
		k.prefetch(0)
		VMOVDQU(Mem{Base: k.xpi}, xv)
		VPABSB(xv, xa)
		for r := range a {
			t := YMM()
			VMOVDQU(k.row(r, 0), t)
			VPSIGNB(xv, t, t)
			VPMADDUBSW(t, xa, t)
			if first {
				VPMADDWD(ones, t, a[r])
			} else {
				VPMADDWD(ones, t, t)
				VPADDD(t, a[r], a[r])
			}
		}
		ADDQ(U8(32), k.xpi)
		ADDQ(U8(32), k.wpi)
	}
	step(true)
	steps(cnt, 5)
	DECQ(cnt)
	JZ(LabelRef("fold"))
	Label("step")
	step(false)
	DECQ(cnt)
	JNZ(LabelRef("step"))

	Label("fold")
	h1, h2 := YMM(), YMM()
	VPHADDD(a[1], a[0], h1) // [a01 a23 b01 b23 | a45 a67 b45 b67]
	VPHADDD(a[3], a[2], h2)
	VPHADDD(h2, h1, h1) // [a b c d | a' b' c' d']
	x := XMM()
	VEXTRACTI128(U8(1), h1, x)
	VPADDD(x, h1.AsX(), x)
	k.scaleAdd(x, acc, nil)
	DECQ(k.gleft)
	JNZ(LabelRef("group"))

	k.store(acc)
	k.blockEnd("block")
	VZEROUPPER()
	RET()
}
