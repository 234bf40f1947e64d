package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # Resident panels (Q8_0 weights repacked when the model is read)
//
// Weights read into anonymous memory are rearranged once, at load, into
// the panel layout of panel.go (model/resident.go does it), so that
// generation reads them as the panel kernels want them: a block of 16 rows
// costs 8 loads, 8 VPDPBUSD and 6 other instructions, where the
// matrix-vector kernel of blocks.go spends about 13 instructions per 64
// bytes and row. A resident block is residentBlockBytes, exactly 16 Q8_0
// blocks: 8 steps of 64 bytes (dword r = row r's 4 values XOR 0x80), then
// the 16 rows' d as float16. Prompts run the panel kernels on them with
// no packing (matMatPanelH{V}VNNI).
const residentBlockBytes = 8*64 + 32

// residentPrefetch is how far ahead (bytes) matVecPanelQ8_0VNNI prefetches
// each stream, one PREFETCHT0 per cache line: just ahead of the hardware
// prefetchers, which follow the 4 streams but not closely enough.
//
// On the Zen 5 VM, BenchmarkMatVecResidentDRAM, GB/s at 1 / 2 threads,
// medians of 4 rounds alternating the builds: 5632x2048 0 (none) 32.7 /
// 57.8, 512 30.8 / 51.9, 1024 34.6 / 63.0, 2048 33.9 / 62.0, 4096 31.8 /
// 59.2, 12288 32.7 / 60.1; 768x768 (stories110M's, 627 KB a call) 1024
// 33.6 / 57.2, 12288 30.3 / 52.3. A longer distance leaves each call's
// first lines to demand misses and spends its last prefetches past the
// streams' ends. Generation, tok/s, medians of 3-4 alternated runs, 12288
// -> 1024: stories110M Q8_0 234 -> 249 at 1 thread, 383 -> 402 at 2;
// TinyLlama-shaped 23.3 -> 26.0 and 28.1 -> 29.2; stories42M at 2 threads
// 898 -> 950. (Before, 4096 28.4, 12288 28.9 and 24576 28.0 tok/s on
// TinyLlama at 1 thread, and prefetching each call's first 12 KiB before
// its loop did nothing.)
var residentPrefetch = 1024

// residentMatVec generates matVecPanelQ8_0VNNI: resident panels times one
// vector, the arithmetic of matMatPanelH1VNNI (so a row's value is the
// same in a prompt's batch and in generation).
//
// Panels go 4 at a time, a quarter of the rows apart (then the last
// panels%4 one at a time), their 64-byte steps taken in turn: on the Zen 5
// VM fewer streams are read from memory slower, as for the file's layout
// (blocks.go). TinyLlama-shaped Q8_0 generation, 1 thread, tok/s, medians
// of 5 alternated runs: 2 streams 23-25, 4 streams a panel at a time
// 25.2, 4 in turn 26.8, 8 in turn 25.3 (the file's kernel 28.1 in a
// noisier spell; 27.2 and 24.8 against 28.9 and 26.9 later). From L2
// (BenchmarkMatVecResidentL2) the kernel reads 150 GB/s against the
// file kernel's 67.
func residentMatVec() {
	name := "matVecPanelQ8_0VNNI"
	TEXT(name, NOSPLIT, "func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32)")
	Doc(name + " multiplies resident Q8_0 panels by a vector; see internal/kernels/resident_amd64.go.")
	panels := Load(Param("out").Len(), GP64())
	SHRQ(U8(4), panels)
	op := Load(Param("out").Base(), GP64())
	pp := Load(Param("p").Base(), GP64())
	pb := Load(Param("xq").Len(), GP64())
	SHRQ(U8(5), pb)
	IMUL3Q(U32(residentBlockBytes), pb, pb) // bytes a panel
	zero := ZMM()
	VPXORD(zero, zero, zero)
	// Panels i, q+i, 2q+i and 3q+i (i < q = panels/4) go together; in out
	// a panel is 16 floats, so the rows' offsets in out grow 16 times.
	ra := newRowsApart(panels, pb)
	q, qpb, qpb3, qo, qo3 := ra.q, ra.qrb, ra.qrb3, ra.q4, ra.q43
	SHLQ(U8(4), qo)
	SHLQ(U8(4), qo3)
	xp, xsp, xcp, cnt, wp := GP64(), GP64(), GP64(), GP64(), GP64()

	for _, S := range []int{4, 1} {
		l := func(s string) string { return fmt.Sprintf("s%d%s", S, s) }
		if S == 4 {
			TESTQ(q, q)
			JZ(LabelRef(l("end")))
		} else {
			Comment("The last panels%4, from panel 4q.")
			ANDQ(U8(3), panels)
			JZ(LabelRef(l("end")))
			ADDQ(qpb3, pp)
			ADDQ(qo3, op)
		}
		at := func(s, off int) Mem { return rowAt(wp, qpb, qpb3, s, off) }

		Label(l("panel"))
		MOVQ(pp, wp)
		Load(Param("xq").Base(), xp)
		Load(Param("xs").Base(), xsp)
		Load(Param("xsum").Base(), xcp)
		Load(Param("xq").Len(), cnt)
		SHRQ(U8(5), cnt)
		facc := make([]VecVirtual, S)
		for s := range facc {
			facc[s] = ZMM()
			zeroFrom(zero, facc[s])
		}
		Label(l("block"))
		c := ZMM()
		VPSLLD_BCST(U8(7), Mem{Base: xcp}, c)
		VPSUBD(c, zero, c) // -128*xsum
		var xb [8]VecVirtual
		if S > 1 {
			for j := range xb {
				xb[j] = ZMM()
				VPBROADCASTD(Mem{Base: xp, Disp: 4 * j}, xb[j])
			}
		}
		acc := make([]VecVirtual, S)
		for s := range S {
			acc[s] = ZMM()
			VMOVDQA64(c, acc[s])
		}
		for j := range 9 { // 8 steps and the d, 544 bytes: 9 lines to prefetch
			for s := range S {
				PREFETCHT0(at(s, residentPrefetch+64*j))
				if j == 8 {
					continue
				}
				w := ZMM()
				VMOVDQU64(at(s, 64*j), w)
				if S > 1 {
					vpdpbusd(xb[j], w, acc[s])
				} else {
					vpdpbusdBcst(Mem{Base: xp, Disp: 4 * j}, w, acc[s])
				}
			}
		}
		for s := range S {
			d := ZMM()
			VCVTPH2PS(at(s, 512), d)
			VCVTDQ2PS(acc[s], acc[s])
			VMULPS(d, acc[s], acc[s])
			VFMADD231PS_BCST(Mem{Base: xsp}, acc[s], facc[s])
		}
		ADDQ(U32(residentBlockBytes), wp)
		ADDQ(U8(32), xp)
		ADDQ(U8(4), xsp)
		ADDQ(U8(4), xcp)
		DECQ(cnt)
		JNZ(LabelRef(l("block")))

		// Stream s's panel is s*q panels on: 64*q bytes of out each.
		for s := range S {
			VMOVUPS(facc[s], rowAt(op, qo, qo3, s, 0))
		}
		MOVQ(wp, pp) // the next panel
		ADDQ(U8(64), op)
		if S == 4 {
			DECQ(q)
		} else {
			DECQ(panels)
		}
		JNZ(LabelRef(l("panel")))
		Label(l("end"))
	}
	VZEROUPPER()
	RET()
}
