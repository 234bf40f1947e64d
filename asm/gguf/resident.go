package main

import (
	"fmt"
	"math/bits"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # Resident panels (Q8_0 and Q4_0 weights repacked when the model is read)
//
// Weights read into anonymous memory are rearranged once, at load, into
// the panel layout of panel.go (model/resident.go does it), so that
// generation reads them as the panel kernels want them: a block of 16 rows
// costs 8 loads, 8 VPDPBUSD and 6 other instructions, where the
// matrix-vector kernel of blocks.go spends about 13 instructions per 64
// bytes and row. A resident block is exactly 16 of the file's blocks:
//   - Q8_0, residentQ8_0.blockBytes: 8 steps of 64 bytes (dword r = row r's
//     4 values XOR 0x80), then the 16 rows' d as float16.
//   - Q4_0, residentQ4_0.blockBytes: 4 chunks of 64 bytes, dword r of chunk
//     k = row r's qs bytes 4k..4k+3 as the file has them, then the rows' d.
//     The low nibbles of chunk k are step k (values 4k..4k+3), the high
//     nibbles step k+4 (values 16+4k..): an AND, a shift and an AND unpack
//     two steps, and a block of 16 rows costs 4 loads, 12 unpacking
//     instructions, 8 VPDPBUSD and 6 more, where the file's layout spends
//     about 56 instructions per 4 rows and 2 blocks (blocks.go), 3.6 times
//     as many: Q4_0 generation there is compute-bound, at about half the
//     bandwidth on Zen 4.
//
// Prompts run the panel kernels on them with no packing
// (matMatPanel{H,N}{V}VNNI), in the arithmetic of the packed panels, so a
// row's value is the same in every layout.
type residentLayout struct {
	name       string // the block type, in the kernels' names
	blockBytes int    // 16 of the file's blocks
	nibbles    bool   // 4 chunks of two steps' nibbles (Q4_0), else 8 steps
	cshift     uint8  // the values are stored plus c = 1<<cshift
}

var (
	residentQ8_0 = residentLayout{"Q8_0", 8*64 + 32, false, 7}
	residentQ4_0 = residentLayout{"Q4_0", 4*64 + 32, true, 3}
)

// dOff is where a block's 16 float16 d start.
func (l residentLayout) dOff() int { return l.blockBytes - 32 }

// loads is the number of 64-byte loads of a block's steps.
func (l residentLayout) loads() int {
	if l.nibbles {
		return 4
	}
	return 8
}

// steps emits load i of a block (at) and returns the steps it holds with
// their numbers: step i, or for nibbles steps i and i+4 (lo is a zmm of
// bytes 0x0f).
func (l residentLayout) steps(at Mem, i int, lo VecVirtual) (js []int, ws []VecVirtual) {
	w := ZMM()
	VMOVDQU64(at, w)
	if !l.nibbles {
		return []int{i}, []VecVirtual{w}
	}
	hi := ZMM()
	VPSRLW(U8(4), w, hi)
	VPANDD(lo, w, w)
	VPANDD(lo, hi, hi)
	return []int{i, i + 4}, []VecVirtual{w, hi}
}

// How far ahead (bytes) the matrix-vector kernels prefetch each stream,
// one PREFETCHT0 per cache line, is their argument pf: the best distance
// differs between microarchitectures (internal/kernels/tuning.go has the
// table and the measurements).

// panelsApart emits the loops of the resident matrix-vector kernels over
// their panels (out's length/16, of blockBytes per blockValues values of
// xq): with apart, 4 panels a quarter of them apart at a time, then the
// last panels%4 one at a time; else one at a time, in order (the per-CPU
// table chooses: internal/kernels/tuning.go). For each panel, with wp at
// its start (S = 4: at the first of the 4, the others qpb, 2*qpb and qpb3
// bytes on; at(s, off) addresses them), each emits the loop over its
// blocks, advancing wp to the next panel, and returns the S panels' sums
// of 16 rows, which panelsApart stores. l makes its labels unique.
func panelsApart(blockBytes, blockValues int, apart bool, each func(S int, l func(string) string, wp GPVirtual, at func(s, off int) Mem, qpb, qpb3 gpr) []VecVirtual) {
	panels := Load(Param("out").Len(), GP64())
	SHRQ(U8(4), panels)
	op := Load(Param("out").Base(), GP64())
	pp := Load(Param("p").Base(), GP64())
	wp := GP64()
	if !apart {
		Label("panel")
		MOVQ(pp, wp)
		facc := each(1, func(s string) string { return s }, wp, func(_, off int) Mem { return Mem{Base: wp, Disp: off} }, nil, nil)
		VMOVUPS(facc[0], Mem{Base: op})
		MOVQ(wp, pp) // the next panel
		ADDQ(U8(64), op)
		DECQ(panels)
		JNZ(LabelRef("panel"))
		return
	}
	pb := Load(Param("xq").Len(), GP64())
	SHRQ(U8(bits.TrailingZeros(uint(blockValues))), pb)
	IMUL3Q(U32(blockBytes), pb, pb) // bytes a panel
	// Panels i, q+i, 2q+i and 3q+i (i < q = panels/4) go together; in out
	// a panel is 16 floats, so the rows' offsets in out grow 16 times.
	ra := newRowsApart(panels, pb)
	q, qpb, qpb3, qo, qo3 := ra.q, ra.qrb, ra.qrb3, ra.q4, ra.q43
	SHLQ(U8(4), qo)
	SHLQ(U8(4), qo3)
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
		Label(l("panel"))
		MOVQ(pp, wp)
		facc := each(S, l, wp, func(s, off int) Mem { return rowAt(wp, qpb, qpb3, s, off) }, qpb, qpb3)
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
}

// matVecName is the name of a resident matrix-vector kernel of type
// name: matVecPanel{name}VNNI with panels apart, matVecPanel{name}SeqVNNI
// in order.
func matVecName(name string, apart bool) string {
	if apart {
		return "matVecPanel" + name + "VNNI"
	}
	return "matVecPanel" + name + "SeqVNNI"
}

// residentMatVec generates matVecPanel{Q8_0,Q4_0}VNNI: resident panels
// times one vector, the arithmetic of matMatPanel{H,N}1VNNI (so a row's
// value is the same in a prompt's batch and in generation).
//
// Panels go 4 at a time, a quarter of the rows apart (then the last
// panels%4 one at a time), their 64-byte steps taken in turn: on the Zen 5
// VM fewer streams are read from memory slower, as for the file's layout
// (blocks.go). TinyLlama-shaped Q8_0 generation, 1 thread, tok/s, medians
// of 5 alternated runs: 2 streams 23-25, 4 streams a panel at a time
// 25.2, 4 in turn 26.8, 8 in turn 25.3 (the file's kernel 28.1 in a
// noisier spell; 27.2 and 24.8 against 28.9 and 26.9 later). From L2
// (BenchmarkMatVecResidentL2) the kernel reads 150 GB/s against the
// file kernel's 67. On Zen 4 one panel after another was faster for
// Q8_0 (matVecPanelQ8_0SeqVNNI; internal/kernels/tuning.go has the
// figures and the choice per CPU).
func residentMatVec(rl residentLayout, apart bool) {
	name := matVecName(rl.name, apart)
	TEXT(name, NOSPLIT, "func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)")
	Doc(name + " multiplies resident " + rl.name + " panels by a vector; see internal/kernels/resident_amd64.go.")
	zero := ZMM()
	VPXORD(zero, zero, zero)
	var lo VecVirtual
	if rl.nibbles {
		lo = broadcastByte(0x0f, true)
	}
	xp, xsp, xcp, cnt := GP64(), GP64(), GP64(), GP64()
	lines := (rl.blockBytes + 63) / 64 // to prefetch, a block
	panelsApart(rl.blockBytes, 32, apart, func(S int, l func(string) string, wp GPVirtual, at func(s, off int) Mem, qpb, qpb3 gpr) []VecVirtual {
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
		VPSLLD_BCST(U8(rl.cshift), Mem{Base: xcp}, c)
		VPSUBD(c, zero, c) // -c*xsum
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
		wpf := GP64() // pf bytes on
		Load(Param("pf"), wpf)
		ADDQ(wp, wpf)
		for i := range lines {
			for s := range S {
				PREFETCHT0(rowAt(wpf, qpb, qpb3, s, 64*i))
				if i >= rl.loads() {
					continue
				}
				js, ws := rl.steps(at(s, 64*i), i, lo)
				for k, j := range js {
					if S > 1 {
						vpdpbusd(xb[j], ws[k], acc[s])
					} else {
						vpdpbusdBcst(Mem{Base: xp, Disp: 4 * j}, ws[k], acc[s])
					}
				}
			}
		}
		for s := range S {
			d := ZMM()
			VCVTPH2PS(at(s, rl.dOff()), d)
			VCVTDQ2PS(acc[s], acc[s])
			VMULPS(d, acc[s], acc[s])
			VFMADD231PS_BCST(Mem{Base: xsp}, acc[s], facc[s])
		}
		ADDQ(U32(rl.blockBytes), wp)
		ADDQ(U8(32), xp)
		ADDQ(U8(4), xsp)
		ADDQ(U8(4), xcp)
		DECQ(cnt)
		JNZ(LabelRef(l("block")))
		return facc
	})
	VZEROUPPER()
	RET()
}
