package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The float32 matrix-vector kernels (matVec4AVX2, matVec4AVX512).

// matVecPrefetch is how far ahead (bytes) matVec4 prefetches each of its
// 4 row streams (PREFETCHT0, every line of every row). The 4 rows of a pass
// are a quarter of the matrix apart, so each stream runs on through
// consecutive rows: the distance is a quarter of a row of 2048 floats, 2
// rows of 288. See matVec4 for the measurements.
var matVecPrefetch = 2048

// matVecPrefetches are the distances the AVX-512 kernels are generated
// for, the values the per-CPU table may pick (internal/kernels/tuning.go):
// matVec4AVX512 prefetches matVecPrefetch bytes ahead, matVec4AVX512P0
// not at all (Zen 4's choice).
var matVecPrefetches = []int{matVecPrefetch, 0}

// matVec4 generates the matrix-vector kernel for vectors of width lanes (8:
// ymm, 16: zmm). It takes 4 rows per pass, rows i, q+i, 2q+i and 3q+i with
// q = len(out)/4, then the last len(out)%4 rows one at a time. Each pass
// loads x once per step and uses it against its rows, with the k loop
// unrolled twice: 4 rows x 2 = 8 independent accumulators, enough to cover
// FMA latency, and 1 load of x per 4 FMAs so the loop is bound by streaming
// w, not by x. A row's sum takes the same additions in both paths (hsum1
// repeats hsum4's tree for one row), so its value does not depend on the
// rows it is computed with, nor on the range of rows of the call.
//
// Why rows a quarter apart: 4 streams close together (adjacent rows) are
// read from memory much slower than 4 streams far apart on Zen 5 (the GGUF
// Q8_0 kernels measured it first, see asm/gguf/blocks.go). Before, the
// kernel took 4 adjacent rows and prefetched the next block of 4 rows
// (contiguous) at 4 times the pace it read its own, for the hardware
// prefetchers stall at every jump to a new row; now each of the 4 streams
// runs on into the next row, and is prefetched matVecPrefetch bytes ahead.
// On the 2-core Zen 5 VM, 1 thread, AVX-512, GB/s, medians of 7 runs
// alternating with that kernel: streaming 920 MB of 5632x2048 matrices
// 22.3 -> 35.6, 940 MB of 2048x768 20.2 -> 35.1, 35 MB of 768x288 30.3 ->
// 43.8; from L3 (12.6 MB of 512x2048) the same, 61 -> 58 (noise +-15%).
// BenchmarkMatVec, AVX-512 and AVX2 alike: 32000x288 and 32000x768 (37
// and 98 MB) 1.3x and 1.8x, the shapes that fit L2 0.95-1.27x (with 288
// rows 1.3-1.5x). The prefetch distance matters from L2: 12 KiB ahead (the
// GGUF kernels' distance) fills L1 with 4x12 KiB of lines not needed yet,
// and cost 20-40% on 768x768, 768x2048 and 2048x768, for no gain from
// memory; no prefetch at all streamed as fast in a quiet run but lost
// 25-30% while another process was loading memory.
//
// With steps, it generates only the pass of 4 rows, over the first steps
// rows of quarters q rows apart (both arguments), so that a thread can take
// a product's rows a piece at a time without restarting its streams
// (model/steal.go).
//
// # One row's arithmetic, shared with the matrix-matrix tiles
//
// A row's value is the one the tile kernels (matmat.go) give each vector,
// so that a vector's values do not depend on the batch it is computed in
// (batch invariance; model/decode.go runs decode steps through MatMat).
// The row is taken in blocks of kb floats (the tiles' cache blocking over
// the row length, a function of n alone: internal/kernels/f32_amd64.go),
// each summed by one accumulator, lanes FMA'd step by step in order (the
// last block's tail through zero-masked loads of both operands), folded by
// hsum4's tree; the row's total is the first block's sum, then each next
// block's added to it. One accumulator a row is one FMA chain per row: 4
// rows give 4 chains, enough to stream memory (16 floats a row per FMA
// latency is about 3x what one core reads from memory), though not to run
// at FMA speed from L1.
func matVec4(name string, zmm, steps bool, prefetch int) {
	if steps {
		TEXT(name, NOSPLIT, "func(out, w, x []float32, kb, q, steps int)")
		Doc(name+" sets out[j*q+s] = dot(w[(j*q+s)*n:][:n], x) for j < 4 and",
			"s < steps, with n = len(x), summed in blocks of kb floats (a",
			"multiple of the lanes); len(out) >= 3q+steps and len(w) >= (3q+steps)*n.")
	} else {
		TEXT(name, NOSPLIT, "func(out, w, x []float32, kb int)")
		Doc(name+" sets out[r] = dot(w[r*n:(r+1)*n], x) with n = len(x), summed",
			"in blocks of kb floats (a multiple of the lanes); len(w) >= len(out)*n.")
	}
	lanes := 8
	vec := YMM
	if zmm {
		lanes = 16
		vec = ZMM
	}
	op := Load(Param("out").Base(), GP64())
	wrow := Load(Param("w").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())

	Comment("q = rows/4: rows i, q+i, 2q+i and 3q+i (i < q) go together,",
		"qs bytes apart in w and q4 bytes apart in out.")
	q, qs, q4 := GP64(), GP64(), GP64()
	if steps {
		Load(Param("q"), q)
	} else {
		Load(Param("out").Len(), q)
		SHRQ(U8(2), q)
	}
	MOVQ(q, qs)
	{
		n := Load(Param("x").Len(), GP64())
		IMULQ(n, qs)
	}
	SHLQ(U8(2), qs)
	MOVQ(q, q4)
	SHLQ(U8(2), q4)

	passes := []int{4, 1}
	if steps {
		passes = passes[:1]
	}
	for _, R := range passes {
		l := func(s string) string { return fmt.Sprintf("r%d%s", R, s) }
		cnt := q
		if R == 4 && steps {
			cnt = GP64()
			Load(Param("steps"), cnt)
			TESTQ(cnt, cnt)
			JZ(LabelRef(l("end")))
		} else if R == 4 {
			TESTQ(q, q)
			JZ(LabelRef(l("end")))
		} else {
			Comment("The last rows%4, from row 4q, one at a time.")
			cnt = GP64()
			Load(Param("out").Len(), cnt)
			ANDQ(U8(3), cnt)
			JZ(LabelRef(l("end")))
			t := GP64()
			LEAQ(Mem{Base: qs, Index: qs, Scale: 2}, t)
			ADDQ(t, wrow)
			LEAQ(Mem{Base: q4, Index: q4, Scale: 2}, t)
			ADDQ(t, op)
		}

		Label(l("rows"))
		rows := []Register{wrow}
		if R == 4 {
			r1, r2, r3 := GP64(), GP64(), GP64()
			LEAQ(Mem{Base: wrow, Index: qs, Scale: 1}, r1)
			LEAQ(Mem{Base: wrow, Index: qs, Scale: 2}, r2)
			LEAQ(Mem{Base: r1, Index: qs, Scale: 2}, r3)
			rows = append(rows, r1, r2, r3)
		}
		tot := XMM() // the rows' totals
		acc := make([]VecVirtual, R)
		for r := range acc {
			acc[r] = vec()
		}
		i, bend := GP64(), GP64()
		XORQ(i, i)

		Label(l("block"))
		Comment("The block [i, bend): bend = min(i+kb, n).")
		zero(zmm, acc...)
		{
			n := Load(Param("x").Len(), GP64())
			Load(Param("kb"), bend)
			ADDQ(i, bend)
			CMPQ(bend, n)
			CMOVQGT(n, bend)
		}
		t := GP64()

		Label(l("loop2"))
		LEAQ(Mem{Base: i, Disp: 2 * lanes}, t)
		CMPQ(t, bend)
		JA(LabelRef(l("step1")))
		if prefetch > 0 {
			Comment("Each row's stream, prefetch bytes ahead: the hardware",
				"prefetchers do not keep 4 streams fed on their own (Zen 5).")
			for r := range rows {
				for off := 0; off < 2*lanes*4; off += 64 {
					PREFETCHT0(Mem{Base: rows[r], Index: i, Scale: 4, Disp: prefetch + off})
				}
			}
		}
		var xv [2]VecVirtual
		for u := range xv {
			xv[u] = vec()
			VMOVUPS(at(xp, i, u*lanes), xv[u])
		}
		for u := range xv {
			for r := range rows {
				VFMADD231PS(at(rows[r], i, u*lanes), xv[u], acc[r])
			}
		}
		ADDQ(U8(2*lanes), i)
		JMP(LabelRef(l("loop2")))

		Label(l("step1"))
		LEAQ(Mem{Base: i, Disp: lanes}, t)
		CMPQ(t, bend)
		JA(LabelRef(l("tail")))
		x1 := vec()
		VMOVUPS(at(xp, i, 0), x1)
		for r := range rows {
			VFMADD231PS(at(rows[r], i, 0), x1, acc[r])
		}
		ADDQ(U8(lanes), i)

		Label(l("tail"))
		CMPQ(i, bend)
		JAE(LabelRef(l("reduce")))
		Comment("The last bend-i < lanes floats: zero-masked loads of both",
			"operands, then whole FMAs, as the tiles do.")
		MOVQ(bend, t)
		SUBQ(i, t)
		xt := vec()
		if zmm {
			k := K()
			loadMask16(t, k)
			VMOVUPS_Z(at(xp, i, 0), k, xt)
			for r := range rows {
				wt := vec()
				VMOVUPS_Z(at(rows[r], i, 0), k, wt)
				VFMADD231PS(wt, xt, acc[r])
			}
		} else {
			m := loadMask8(t)
			VMASKMOVPS(at(xp, i, 0), m, xt)
			for r := range rows {
				wt := vec()
				VMASKMOVPS(at(rows[r], i, 0), m, wt)
				VFMADD231PS(wt, xt, acc[r])
			}
		}
		MOVQ(bend, i)

		Label(l("reduce"))
		var s Register
		if R == 4 {
			s = hsum4([4]VecVirtual{acc[0], acc[1], acc[2], acc[3]}, zmm)
		} else {
			s = hsum1(acc[0], zmm)
		}
		Comment("The first block's sums start the totals; the others add to them.")
		{
			kb := Load(Param("kb"), GP64())
			CMPQ(i, kb)
		}
		JA(LabelRef(l("add")))
		VMOVAPS(s, tot)
		JMP(LabelRef(l("next")))
		Label(l("add"))
		if R == 4 {
			VADDPS(s, tot, tot)
		} else {
			VADDSS(s, tot, tot)
		}
		Label(l("next"))
		{
			n := Load(Param("x").Len(), GP64())
			CMPQ(i, n)
		}
		JB(LabelRef(l("block")))

		if R == 4 {
			VMOVSS(tot, Mem{Base: op})
			VEXTRACTPS(U8(1), tot, Mem{Base: op, Index: q4, Scale: 1})
			VEXTRACTPS(U8(2), tot, Mem{Base: op, Index: q4, Scale: 2})
			q43 := GP64()
			LEAQ(Mem{Base: q4, Index: q4, Scale: 2}, q43)
			VEXTRACTPS(U8(3), tot, Mem{Base: op, Index: q43, Scale: 1})
		} else {
			VMOVSS(tot, Mem{Base: op})
		}
		ADDQ(U8(4), op)
		{
			n := Load(Param("x").Len(), GP64())
			LEAQ(Mem{Base: wrow, Index: n, Scale: 4}, wrow)
		}
		DECQ(cnt)
		JNZ(LabelRef(l("rows")))
		Label(l("end"))
	}

	VZEROUPPER()
	RET()
}

func matVec4AVX2() { matVec4("matVec4AVX2", false, false, matVecPrefetch) }

func matVec4StepsAVX2() { matVec4("matVec4StepsAVX2", false, true, matVecPrefetch) }

// matVec4AVX512 generates the AVX-512 kernels, with and without steps,
// once per distance of matVecPrefetches.
func matVec4AVX512() {
	for _, pf := range matVecPrefetches {
		suffix := ""
		if pf != matVecPrefetch {
			suffix = fmt.Sprintf("P%d", pf)
		}
		matVec4("matVec4AVX512"+suffix, true, false, pf)
		matVec4("matVec4StepsAVX512"+suffix, true, true, pf)
	}
}
