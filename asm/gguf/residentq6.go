package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # Resident Q6_K panels
//
// Q6_K weights get a panel of 16 rows too: 16 of the file's super-blocks,
// 3360 bytes, their bytes in the order the kernels read them:
//
//   - 16 rows of 16 bytes at q6ScOff: byte r of row j is row r's int8
//     scale of sub-block j (16 values);
//   - the 16 rows' d (float16) at q6DOff;
//   - from q6QOff, per half h < 2 and k < 8, three chunks of 64 bytes:
//     dword r of the first is row r's qh bytes 32h+4k..32h+4k+3, of the
//     second its ql bytes 64h+4k.., of the third its ql bytes 64h+32+4k...
//
// The three chunks give 4 steps of 4 values of the 16 rows, values
// 128h+32t+4k.. (t < 4): the low or high nibbles of the ql chunks with
// bits 2t..2t+1 of the qh bytes moved to bits 4-5 (a shift, an AND and a
// VPTERNLOGD bit select each), sub-block 8h+2t+k/4. Each sub-block's sum
// starts from -32 times the activation's sum over its 16 values (from
// aux: Σ(q-32)x = Σ qx - 32Σx), and is multiplied by the rows' scale
// (VPMOVSXBD, VPMULLD) into the rows' integer super-block sum; then
//
//	total += float(Σ sc_j*A_j) * d * xs
//
// (VCVTDQ2PS, VMULPS, an FMA), in the same order in every kernel.
const (
	q6ResBlockBytes = 16 * 210
	q6ScOff         = 0
	q6DOff          = q6ScOff + 16*16
	q6QOff          = q6DOff + 32
)

// q6SuperBlock emits one resident Q6_K super-block of S panels by V
// vectors, as kSuperBlock does for Q4_K; act.sums(v, j) addresses -32
// times vector v's sum over the 16 values of sub-block j.
func q6SuperBlock(S, V int, blk func(s, off int) Mem, act kAct, lo, m30 VecVirtual, prefetch func(s, line int), facc func(s, v int) Op) {
	sumi := make([][]VecVirtual, S)
	for s := range sumi {
		sumi[s] = make([]VecVirtual, V)
	}
	for h := range 2 {
		for e := range 2 {
			acc := make([][][4]VecVirtual, S)
			for s := range acc {
				acc[s] = make([][4]VecVirtual, V)
				for v := range acc[s] {
					for t := range 4 {
						acc[s][v][t] = ZMM()
						VPBROADCASTD(act.sums(v, 8*h+e+2*t), acc[s][v][t])
					}
				}
			}
			for k := 4 * e; k < 4*e+4; k++ {
				base := q6QOff + 192*(8*h+k)
				for s := range S {
					if prefetch != nil {
						for i := range 3 {
							prefetch(s, (base+64*i)/64)
						}
						if 8*h+k < 5 { // scales and d
							prefetch(s, 8*h+k)
						}
					}
					q, l0, l1 := ZMM(), ZMM(), ZMM()
					VMOVDQU64(blk(s, base), q)
					VMOVDQU64(blk(s, base+64), l0)
					VMOVDQU64(blk(s, base+128), l1)
					for t := range 4 {
						w := ZMM()
						switch t {
						case 0:
							VPSLLW(U8(4), q, w)
						case 1:
							VPSLLW(U8(2), q, w)
						case 2:
							VMOVDQA64(q, w)
						case 3:
							VPSRLW(U8(2), q, w)
						}
						VPANDD(m30, w, w) // the top 2 bits, at bits 4-5
						src := l0
						if t%2 == 1 {
							src = l1
						}
						if t == 2 {
							VPSRLW(U8(4), l0, l0) // the high nibbles
						}
						if t == 3 {
							VPSRLW(U8(4), l1, l1)
						}
						VPTERNLOGD(U8(0xd8), lo, src, w) // lo ? src : w, bit by bit
						for v := range V {
							vpdpbusdBcst(act.x(v, 128*h+32*t+4*k), w, acc[s][v][t])
						}
					}
				}
			}
			for s := range S {
				for t := range 4 {
					sc := ZMM()
					VPMOVSXBD(blk(s, q6ScOff+16*(8*h+e+2*t)), sc)
					for v := range V {
						if h == 0 && e == 0 && t == 0 {
							sumi[s][v] = ZMM()
							VPMULLD(sc, acc[s][v][t], sumi[s][v])
							continue
						}
						VPMULLD(sc, acc[s][v][t], acc[s][v][t])
						VPADDD(acc[s][v][t], sumi[s][v], sumi[s][v])
					}
				}
			}
		}
	}
	for s := range S {
		d := ZMM()
		VCVTPH2PS(blk(s, q6DOff), d)
		for v := range V {
			f := sumi[s][v]
			VCVTDQ2PS(f, f)
			VMULPS(d, f, f)
			if r, ok := facc(s, v).(VecVirtual); ok {
				VFMADD231PS_BCST(act.xs(v), f, r)
				continue
			}
			acc := ZMM()
			VMOVUPS(facc(s, v), acc)
			VFMADD231PS_BCST(act.xs(v), f, acc)
			VMOVUPS(acc, facc(s, v))
		}
	}
}
