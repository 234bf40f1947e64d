package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// widen16 loads 16 halves at m (masked by k if not nil: lanes past the
// mask are zero and not read) and widens them to float32 in a zmm.
func widen16(m Mem, k Register, bf16 bool) VecVirtual {
	z := ZMM()
	if k != nil {
		h := YMM()
		VMOVDQU16_Z(m, k, h)
		if bf16 {
			VPMOVZXWD(h, z)
		} else {
			VCVTPH2PS(h, z)
		}
	} else if bf16 {
		VPMOVZXWD(m, z)
	} else {
		VCVTPH2PS(m, z)
	}
	if bf16 {
		VPSLLD(U8(16), z, z)
	}
	return z
}

// widen8 is widen16 for 8 halves into a ymm (AVX2, F16C).
func widen8(m Mem, bf16 bool) VecVirtual {
	y := YMM()
	if bf16 {
		VPMOVZXWD(m, y)
		VPSLLD(U8(16), y, y)
	} else {
		VCVTPH2PS(m, y)
	}
	return y
}

// halfPrefetch is how far ahead (bytes) each row's stream is prefetched.
// With rows apart, generation on a TinyLlama-shaped F16 file went from
// 5.6-6.4 to 10.3-11.2 tok/s at 1 thread on the Zen 5 VM (two alternating
// runs each, another job running); the distance is not tuned.
var halfPrefetch = 4096

// halfMatVecAVX512 generates matVecF16AVX512 / matVecBF16AVX512: rows 4 at
// a time sharing each load of x, rows/4 rows apart (4 streams far apart
// read memory faster than 4 adjacent rows: see blockMatVecVNNI), then the
// last rows%4 one at a time by the same addition tree (hsum1t), so a row's
// value does not depend on the rows it is computed with; columns 32 at a
// time, then 16, then a masked tail, into one accumulator a row: the
// arithmetic of the 4x4 tiles (halfTileAVX512: 16 columns a step, the
// tail's halves and x zero-masked, hsum4's tree), so that a row's value is
// the same in a prompt's batch as alone (batch invariance). 4 FMA chains
// stream memory well enough: the kernel is bound by the weights' reads.
func halfMatVecAVX512(name string, bf16 bool) {
	TEXT(name, NOSPLIT, "func(out []float32, w []uint16, x []float32)")
	Doc(name + " computes out[r] = row r of w · x; see internal/kernels/blocks_amd64.go.")
	rows := Load(Param("out").Len(), GP64())
	op := Load(Param("out").Base(), GP64())
	wrow := Load(Param("w").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	n2 := GP64()
	LEAQ(Mem{Base: n, Index: n, Scale: 1}, n2) // bytes per row
	tail := K()
	rem := GP64()
	MOVQ(n, rem)
	ANDQ(U8(15), rem)
	maskLow(rem, tail)
	wp, xp, cnt := GP64(), GP64(), GP64()

	ra := newRowsApart(rows, n2)

	for _, R := range []int{4, 1} {
		l := func(s string) string { return fmt.Sprintf("r%d%s", R, s) }
		ra.begin(R, rows, wrow, op, l("end"))
		Label(l("rows"))
		MOVQ(wrow, wp)
		Load(Param("x").Base(), xp)
		var acc [4]VecVirtual
		for r := range R {
			acc[r] = ZMM()
			VXORPS(acc[r], acc[r], acc[r])
		}
		step := func(units int, k Register) {
			var xv [2]VecVirtual
			for u := range units {
				xv[u] = ZMM()
				if k != nil {
					VMOVUPS_Z(Mem{Base: xp}, k, xv[u])
				} else {
					VMOVUPS(Mem{Base: xp, Disp: 64 * u}, xv[u])
				}
			}
			for r := range R {
				for u := range units {
					if k == nil && u == 0 {
						PREFETCHT0(rowAt(wp, ra.qrb, ra.qrb3, r, halfPrefetch))
					}
					wv := widen16(rowAt(wp, ra.qrb, ra.qrb3, r, 32*u), k, bf16)
					VFMADD231PS(xv[u], wv, acc[r])
				}
			}
		}
		MOVQ(n, cnt)
		SHRQ(U8(5), cnt)
		JZ(LabelRef(l("one")))
		Label(l("loop"))
		step(2, nil)
		ADDQ(U8(128), xp)
		ADDQ(U8(64), wp)
		DECQ(cnt)
		JNZ(LabelRef(l("loop")))
		Label(l("one"))
		TESTQ(U32(16), n)
		JZ(LabelRef(l("tail")))
		step(1, nil)
		ADDQ(U8(64), xp)
		ADDQ(U8(32), wp)
		Label(l("tail"))
		TESTQ(rem, rem)
		JZ(LabelRef(l("sum")))
		step(1, tail)

		Label(l("sum"))
		if R == 4 {
			s := hsum4([4]VecVirtual(acc))
			ra.store(s, op)
		} else {
			s := hsum1t(acc[0])
			VMOVSS(s, Mem{Base: op})
		}
		ADDQ(n2, wrow)
		ADDQ(U8(4), op)
		if R == 4 {
			DECQ(ra.q)
		} else {
			DECQ(rows)
		}
		JNZ(LabelRef(l("rows")))
		Label(l("end"))
	}
	VZEROUPPER()
	RET()
}

// halfTileAVX512 generates matMatF16x4x4AVX512 / matMatBF16x4x4AVX512:
// tiles of 4 rows by 4 vectors, 16 accumulators; per 16 columns 4 widened
// weight vectors each serve 4 FMAs (the float kernel's 8x3 tiles would not
// leave registers for the conversions).
func halfTileAVX512(name string, bf16 bool) {
	TEXT(name, NOSPLIT, "func(out []float32, w []uint16, x []float32, n, m, tiles int)")
	Doc(name + " computes tiles of 4 rows by 4 vectors; see internal/kernels/blocks_amd64.go.")
	tiles := Load(Param("tiles"), GP64())
	TESTQ(tiles, tiles)
	JZ(LabelRef("done"))
	n := Load(Param("n"), GP64())
	n2 := GP64()
	LEAQ(Mem{Base: n, Index: n, Scale: 1}, n2)
	n6 := times3(n2)
	n4 := GP64()
	LEAQ(Mem{Base: n2, Index: n2, Scale: 1}, n4) // bytes per vector
	n12 := times3(n4)
	rem := GP64()
	MOVQ(n, rem)
	ANDQ(U8(15), rem)
	tail := K()
	maskLow(rem, tail)
	op := Load(Param("out").Base(), GP64())
	xt := Load(Param("x").Base(), GP64())
	m4 := Load(Param("m"), GP64())
	SHLQ(U8(2), m4)
	wp, xp, cnt := GP64(), GP64(), GP64()

	var acc [4][4]VecVirtual // [vector][row]
	step := func(k Register) {
		var wv [4]VecVirtual
		for r := range wv {
			wv[r] = widen16(rowAt(wp, n2, n6, r, 0), k, bf16)
		}
		for v := range acc {
			xv := ZMM()
			if k != nil {
				VMOVUPS_Z(rowAt(xp, n4, n12, v, 0), k, xv)
			} else {
				VMOVUPS(rowAt(xp, n4, n12, v, 0), xv)
			}
			for r := range wv {
				VFMADD231PS(xv, wv[r], acc[v][r])
			}
		}
	}

	Label("tile")
	Load(Param("w").Base(), wp)
	MOVQ(xt, xp)
	for v := range acc {
		for r := range acc[v] {
			acc[v][r] = ZMM()
			VXORPS(acc[v][r], acc[v][r], acc[v][r])
		}
	}
	MOVQ(n, cnt)
	SHRQ(U8(4), cnt)
	JZ(LabelRef("tail"))
	Label("loop")
	step(nil)
	ADDQ(U8(64), xp)
	ADDQ(U8(32), wp)
	DECQ(cnt)
	JNZ(LabelRef("loop"))
	Label("tail")
	TESTQ(rem, rem)
	JZ(LabelRef("store"))
	step(tail)

	Label("store")
	Comment("Vector v's four rows go to out[v*m : v*m+4].")
	for v := range acc {
		s := hsum4(acc[v])
		VMOVUPS(s, Mem{Base: op})
		ADDQ(m4, op)
	}
	LEAQ(Mem{Base: xt, Index: n4, Scale: 4}, xt)
	DECQ(tiles)
	JNZ(LabelRef("tile"))
	Label("done")
	VZEROUPPER()
	RET()
}

// halfMatVecAVX2 generates matVecF16AVX2 / matVecBF16AVX2: 4 rows at a
// time, then one; 16 columns a step (two ymm accumulators per row), then 8.
// The columns past the last multiple of 8 are left to the Go driver.
func halfMatVecAVX2(name string, bf16 bool) {
	TEXT(name, NOSPLIT, "func(out []float32, w []uint16, x []float32, n int)")
	Doc(name+" computes out[r] = row r of w · x over len(x) columns (a multiple",
		"of 8) of rows n halves apart; see internal/kernels/blocks_amd64.go.")
	rows := Load(Param("out").Len(), GP64())
	op := Load(Param("out").Base(), GP64())
	wrow := Load(Param("w").Base(), GP64())
	cols := Load(Param("x").Len(), GP64())
	n2 := Load(Param("n"), GP64())
	SHLQ(U8(1), n2)
	n6 := times3(n2)
	wp, xp, cnt := GP64(), GP64(), GP64()

	for _, R := range []int{4, 1} {
		l := func(s string) string { return fmt.Sprintf("r%d%s", R, s) }
		Label(l("rows"))
		CMPQ(rows, U8(R))
		JB(LabelRef(l("end")))
		MOVQ(wrow, wp)
		Load(Param("x").Base(), xp)
		var acc [4][2]VecVirtual
		for r := range R {
			for u := range 2 {
				acc[r][u] = YMM()
				VXORPS(acc[r][u], acc[r][u], acc[r][u])
			}
		}
		step := func(units int) {
			var xv [2]VecVirtual
			for u := range units {
				xv[u] = YMM()
				VMOVUPS(Mem{Base: xp, Disp: 32 * u}, xv[u])
			}
			for r := range R {
				for u := range units {
					wv := widen8(rowAt(wp, n2, n6, r, 16*u), bf16)
					VFMADD231PS(xv[u], wv, acc[r][u])
				}
			}
		}
		MOVQ(cols, cnt)
		SHRQ(U8(4), cnt)
		JZ(LabelRef(l("one")))
		Label(l("loop"))
		step(2)
		ADDQ(U8(64), xp)
		ADDQ(U8(32), wp)
		DECQ(cnt)
		JNZ(LabelRef(l("loop")))
		Label(l("one"))
		TESTQ(U32(8), cols)
		JZ(LabelRef(l("sum")))
		step(1)

		Label(l("sum"))
		for r := range R {
			VADDPS(acc[r][1], acc[r][0], acc[r][0])
		}
		if R == 4 {
			s := hadd4([4]VecVirtual{acc[0][0], acc[1][0], acc[2][0], acc[3][0]})
			VMOVUPS(s, Mem{Base: op})
			LEAQ(Mem{Base: wrow, Index: n2, Scale: 4}, wrow)
		} else {
			s := hadd1(acc[0][0])
			VMOVSS(s, Mem{Base: op})
			ADDQ(n2, wrow)
		}
		ADDQ(U8(4*R), op)
		SUBQ(U8(R), rows)
		JMP(LabelRef(l("rows")))
		Label(l("end"))
	}
	VZEROUPPER()
	RET()
}
