package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The float32 matrix-matrix tile kernels (matMat4x2AVX2, matMat8x3AVX512,
// matMat8x2AVX512, matMat8x1AVX512), for prompts in batches.

// rowPointers returns four pointers to consecutive rows of stride bytes
// starting at p.
func rowPointers(p, stride Register) [4]Register {
	var rows [4]Register
	rows[0] = p
	for r := 1; r < 4; r++ {
		rows[r] = GP64()
		LEAQ(Mem{Base: rows[r-1], Index: stride, Scale: 1}, rows[r])
	}
	return rows
}

// matMatTile generates an AVX2 kernel computing tiles of 4 rows x nb batch
// vectors: out[b*m+r] = dot(w[r*n:], x[b*n:]) for r < 4, b < nb*tiles. Every
// step loads 4 row vectors of w and nb vectors of x into registers and does
// 4*nb FMAs, so each load feeds nb (or 4) FMAs instead of one as in matVec:
// matMat runs from L1/L2 at FMA speed rather than at load speed. The
// accumulator tile is sized to the register file: 4x2 ymm (8 of 16). The 4
// rows of w stay in L1 while the kernel walks tiles consecutive vectors of
// x. (AVX-512 has the 8-row tiles of matMatTile8.)
func matMatTile(name string, nb int) {
	TEXT(name, NOSPLIT, "func(out, w, x []float32, n, m, tiles int)")
	Doc(fmt.Sprintf("%s sets out[b*m+r] = dot(w[r*n:(r+1)*n], x[b*n:(b+1)*n]) for r < 4 and", name),
		fmt.Sprintf("b < %d*tiles; the caller guarantees the slices are long enough.", nb))
	const lanes = 8
	vec := YMM
	tiles := addr(Param("tiles"))
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("n"), GP64())
	stride := GP64()
	MOVQ(n, stride)
	SHLQ(U8(2), stride)

	Comment("Build the tail mask while n is at hand.")
	rem := GP64()
	MOVQ(n, rem)
	ANDQ(U8(lanes-1), rem)
	mask := loadMask8(rem)
	MOVQ(n, rem)
	ANDQ(U8(lanes-1), rem)

	Comment("The inner loop counts i from -n1 up to 0 on pointers advanced to",
		"the end of the full vectors, so it needs no separate bound register.")
	n1 := GP64()
	MOVQ(n, n1)
	ANDQ(I32(-lanes), n1)
	rows := rowPointers(wp, stride)
	vecs := make([]Register, nb)
	vecs[0] = xp
	for b := 1; b < nb; b++ {
		vecs[b] = GP64()
		LEAQ(Mem{Base: vecs[b-1], Index: stride, Scale: 1}, vecs[b])
	}
	for _, p := range append(rows[:], vecs...) {
		LEAQ(Mem{Base: p, Index: n1, Scale: 4}, p)
	}
	Comment("From one tile to the next the vectors move by nb*n floats.")
	tstride := stride
	SHLQ(U8(bitsOf(nb)), tstride)

	acc := make([][4]VecVirtual, nb)
	for b := range acc {
		for r := range acc[b] {
			acc[b][r] = vec()
		}
	}
	var wv [4]VecVirtual
	for r := range wv {
		wv[r] = vec()
	}
	xv := make([]VecVirtual, nb)
	for b := range xv {
		xv[b] = vec()
	}
	fmas := func() {
		for b := range xv {
			for r := range wv {
				VFMADD231PS(wv[r], xv[b], acc[b][r])
			}
		}
	}

	Label("tileloop")
	CMPQ(tiles, U8(0))
	JE(LabelRef("done"))
	for b := range acc {
		zero(false, acc[b][:]...)
	}
	i := GP64()
	MOVQ(n1, i)
	NEGQ(i)
	JZ(LabelRef("tail"))
	Label("loop")
	for r := range rows {
		VMOVUPS(at(rows[r], i, 0), wv[r])
	}
	for b := range vecs {
		VMOVUPS(at(vecs[b], i, 0), xv[b])
	}
	fmas()
	ADDQ(U8(lanes), i)
	JNZ(LabelRef("loop"))

	Label("tail")
	Comment("Masked step over the last n%lanes elements; lanes past the end",
		"load as zeros in both operands.")
	TESTQ(rem, rem)
	JZ(LabelRef("reduce"))
	for r := range rows {
		VMASKMOVPS(Mem{Base: rows[r]}, mask, wv[r])
	}
	for b := range vecs {
		VMASKMOVPS(Mem{Base: vecs[b]}, mask, xv[b])
	}
	fmas()

	Label("reduce")
	ostride := GP64()
	MOVQ(addr(Param("m")), ostride)
	SHLQ(U8(2), ostride)
	for b := range acc {
		VMOVUPS(hsum4(acc[b], false), Mem{Base: op})
		ADDQ(ostride, op)
	}
	for _, p := range vecs {
		ADDQ(tstride, p)
	}
	DECQ(tiles)
	JMP(LabelRef("tileloop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// bitsOf returns log2(v) for a power of two v.
func bitsOf(v int) int {
	b := 0
	for 1<<b < v {
		b++
	}
	return b
}

func matMat4x2AVX2() { matMatTile("matMat4x2AVX2", 2) }

// matMatTile8 generates an AVX-512 kernel computing tiles of 8 rows x nb
// batch vectors (nb <= 3): out[b*m+r] = dot(w[r*n:], x[b*n:]) for r < 8,
// b < nb*tiles. Every step loads the nb vectors of x, then for each of the 8
// rows its w vector and nb FMAs: 8*nb accumulators + nb + 1 registers (28 of
// 32 for nb = 3). Against a 4x4 tile this halves the loads of x (which
// stream from L2) per FMA, at the price of an 8-row block of w in L1.
// Rows and vectors are addressed from two row pointers and one vector
// pointer plus multiples of the row stride, so that the pointers fit in the
// general registers; they advance one vector per step.
//
// Rows and vectors are n floats apart, but only their first k floats enter
// the dot products, so that the caller can split long rows into blocks of k
// that fit in L1 (cache blocking over the row length); with add set the
// kernel adds its dot products to out instead of overwriting it.
func matMatTile8(name string, nb int) {
	TEXT(name, NOSPLIT, "func(out, w, x []float32, n, k, m, tiles int, add bool)")
	Doc(fmt.Sprintf("%s sets out[b*m+r] = dot(w[r*n:r*n+k], x[b*n:b*n+k]) for r < 8 and", name),
		fmt.Sprintf("b < %d*tiles (adds it to out[b*m+r] if add); the caller guarantees the slices", nb),
		"are long enough.")
	const lanes = 16
	tiles := addr(Param("tiles"))
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	xt := Load(Param("x").Base(), GP64())
	n := Load(Param("n"), GP64())
	s := GP64()
	MOVQ(n, s)
	SHLQ(U8(2), s)
	s3 := GP64()
	LEAQ(Mem{Base: s, Index: s, Scale: 2}, s3)

	Comment("The steps over k floats, and the tail mask of the last k%16.")
	steps := Load(Param("k"), GP64())
	rem := GP64()
	MOVQ(steps, rem)
	ANDQ(U8(lanes-1), rem)
	k := K()
	loadMask16(rem, k)
	SHRQ(U8(4), steps)

	Comment("pf runs through the next block of 8 rows (it follows this one in",
		"memory), one line per step, pulling it into L2 while this block is",
		"in use; prefetches never fault, so it may run past the end of w.")
	pf := GP64()
	LEAQ(Mem{Base: wp, Index: s, Scale: 8}, pf)
	Comment("From one tile to the next the vectors move by nb*n floats.")
	tstride := GP64()
	switch nb {
	case 1:
		MOVQ(s, tstride)
	case 2:
		LEAQ(Mem{Base: s, Index: s, Scale: 1}, tstride)
	case 3:
		MOVQ(s3, tstride)
	default:
		panic("matMatTile8: nb > 3")
	}

	acc := make([][8]VecVirtual, nb)
	for b := range acc {
		for r := range acc[b] {
			acc[b][r] = ZMM()
		}
	}
	xv := make([]VecVirtual, nb)
	for b := range xv {
		xv[b] = ZMM()
	}
	w0, w4, xc, i := GP64(), GP64(), GP64(), GP64()
	// rowAddr and vecAddr address row r of w and vector b of x at the cursors.
	rowAddr := func(r int) Mem { return row8(w0, w4, s, s3, r) }
	vecAddr := func(b int) Mem {
		if b == 0 {
			return Mem{Base: xc}
		}
		return Mem{Base: xc, Index: s, Scale: uint8(b)}
	}
	step := func(masked bool) {
		for b := range xv {
			if masked {
				VMOVUPS_Z(vecAddr(b), k, xv[b])
			} else {
				VMOVUPS(vecAddr(b), xv[b])
			}
		}
		for r := 0; r < 8; r++ {
			wv := ZMM()
			if masked {
				VMOVUPS_Z(rowAddr(r), k, wv)
			} else {
				VMOVUPS(rowAddr(r), wv)
			}
			for b := range xv {
				VFMADD231PS(wv, xv[b], acc[b][r])
			}
		}
	}

	Label("tileloop")
	CMPQ(tiles, U8(0))
	JE(LabelRef("done"))
	for b := range acc {
		zero(true, acc[b][:]...)
	}
	MOVQ(wp, w0)
	LEAQ(Mem{Base: wp, Index: s, Scale: 4}, w4)
	MOVQ(xt, xc)
	MOVQ(steps, i)
	TESTQ(i, i)
	JZ(LabelRef("tail"))
	Label("loop")
	step(false)
	PREFETCHT1(Mem{Base: pf})
	ADDQ(U8(64), pf)
	ADDQ(U8(64), w0)
	ADDQ(U8(64), w4)
	ADDQ(U8(64), xc)
	DECQ(i)
	JNZ(LabelRef("loop"))

	Label("tail")
	Comment("Masked step over the last n%16 elements; lanes past the end",
		"load as zeros in both operands.")
	TESTQ(rem, rem)
	JZ(LabelRef("reduce"))
	step(true)

	Label("reduce")
	ostride := GP64()
	MOVQ(addr(Param("m")), ostride)
	SHLQ(U8(2), ostride)
	store := func(add bool) {
		for b := range acc {
			for h := range 2 {
				v := hsum4([4]VecVirtual(acc[b][4*h:4*h+4]), true)
				if add {
					VADDPS(Mem{Base: op, Disp: 16 * h}, v, v)
				}
				VMOVUPS(v, Mem{Base: op, Disp: 16 * h})
			}
			ADDQ(ostride, op)
		}
	}
	CMPB(addr(Param("add")), U8(0))
	JNE(LabelRef("add"))
	store(false)
	JMP(LabelRef("next"))
	Label("add")
	store(true)
	Label("next")
	ADDQ(tstride, xt)
	DECQ(tiles)
	JMP(LabelRef("tileloop"))

	Label("done")
	VZEROUPPER()
	RET()
}

func matMat8x3AVX512() { matMatTile8("matMat8x3AVX512", 3) }
func matMat8x2AVX512() { matMatTile8("matMat8x2AVX512", 2) }
func matMat8x1AVX512() { matMatTile8("matMat8x1AVX512", 1) }

// row8 addresses row r (0-7) of rows s bytes apart: rows 0-3 from lo and
// rows 4-7 from hi, which holds lo + 4s; s3 holds 3s.
func row8(lo, hi, s, s3 Register, r int) Mem {
	base := lo
	if r >= 4 {
		base = hi
	}
	switch r % 4 {
	case 0:
		return Mem{Base: base}
	case 1:
		return Mem{Base: base, Index: s, Scale: 1}
	case 2:
		return Mem{Base: base, Index: s, Scale: 2}
	}
	return Mem{Base: base, Index: s3, Scale: 1}
}
