package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # Panels (batched prompts)
//
// The batched Q8_0 and Q4_0 products run on panels of 16 rows, repacked
// once per call so that one zmm holds the same 4 values of all 16 rows:
// step j of a block (values 4j..4j+3) is 64 bytes, dword r = row r's
// unsigned bytes (value + c). VPDPBUSD with the 4 activation bytes of a
// vector broadcast from memory then accumulates the 16 rows' block sums in
// its 16 lanes: no horizontal sums, the block's scales applied once per
// block and vector (int32 to float, times the rows' d, FMA with the
// vector's scale). 8 vectors share each loaded step: 64 VPDPBUSD and about
// 40 other instructions per block of 16 rows by 8 vectors, where the 4x4
// tile kernels (blocks.go) spent about 100 on folding and scaling per 16
// VPDPBUSD. Measured on the 2-core Zen 5 VM, TinyLlama-shaped Q4_0 pp128 at
// 1 thread: see internal/kernels/blocks_tile_amd64.go.
//
// A packed block is panelBlockBytes: 8 steps of 64 bytes, then the 16
// rows' d as float32.
const panelBlockBytes = 8*64 + 64

// panelVectors are the tile widths generated: a batch is cut into 8s, then
// the rest into 4, 2 and 1.
var panelVectors = []int{8, 4, 2, 1}

var panelIdx01, panelIdx23, panelQ8Lo, panelQ8Hi, panelIota Mem

func panelData() {
	// VPERMT2D indices over [A | B], A and B each 4 rows of 4 dwords
	// (Q4_0's 16 bytes of qs a row): rows 0-7 of dword j, then of dword
	// j+1 (j = 0 or 2).
	idx := func(name string, j int) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i := range 16 {
			r, jj := i%8, j+i/8
			DATA(4*i, U32(16*(r/4)+4*(r%4)+jj))
		}
		return m
	}
	panelIdx01, panelIdx23 = idx("ggufpanelidx01", 0), idx("ggufpanelidx23", 2)
	// Q8_0: over [A | B], each 2 rows of 8 dwords: lane (j%4)*4+r holds
	// dword j of row r (r < 4), j < 4 (lo) or j >= 4 (hi).
	q8idx := func(name string, j0 int) Mem {
		m := GLOBL(name, RODATA|NOPTR)
		for i := range 16 {
			j, r := j0+i/4, i%4
			DATA(4*i, U32(16*(r/2)+8*(r%2)+j))
		}
		return m
	}
	panelQ8Lo, panelQ8Hi = q8idx("ggufpanelq8lo", 0), q8idx("ggufpanelq8hi", 4)
	panelIota = GLOBL("ggufpaneliota", RODATA|NOPTR)
	for i := range 16 {
		DATA(4*i, U32(i))
	}
}

// panelPack generates packPanelQ8_0VNNI / packPanelQ4_0VNNI: 16 rows of nb
// blocks (rowBytes apart) into nb packed blocks.
func panelPack(bt *blockType) {
	name := "packPanel" + bt.name + "VNNI"
	TEXT(name, NOSPLIT, "func(dst []byte, w []byte, rowBytes, nb int)")
	Doc(name + " packs 16 rows of blocks into a panel; see internal/kernels/blocks_tile_amd64.go.")
	dp := Load(Param("dst").Base(), GP64())
	cnt := Load(Param("nb"), GP64())
	rb := GP64()
	Load(Param("rowBytes"), rb)
	rb3 := times3(rb)
	var base [4]GPVirtual
	base[0] = GP64()
	Load(Param("w").Base(), base[0])
	for i := 1; i < 4; i++ {
		base[i] = GP64()
		LEAQ(Mem{Base: base[i-1], Index: rb, Scale: 4}, base[i])
	}
	gidx := ZMM()
	{
		VPBROADCASTD(rb.As32(), gidx)
		VPMULLD(panelIota, gidx, gidx)
	}
	var c, lo, i01, i23 VecVirtual
	if bt.q4 {
		lo = broadcastByte(0x0f, true)
		i01, i23 = ZMM(), ZMM()
		VMOVDQU64(panelIdx01, i01)
		VMOVDQU64(panelIdx23, i23)
	} else {
		c = broadcastByte(bt.c, true)
		i01, i23 = ZMM(), ZMM()
		VMOVDQU64(panelQ8Lo, i01)
		VMOVDQU64(panelQ8Hi, i23)
	}
	zero := ZMM()
	VPXORD(zero, zero, zero)
	row := func(r, off int) Mem { return rowAt(base[r/4], rb, rb3, r%4, off) }

	Label("block")
	var steps [8]VecVirtual
	if bt.q4 {
		// Four zmm of 4 rows' qs, dword lanes (row%4)*4 + dword.
		var q [4]VecVirtual
		for g := range q {
			q[g] = ZMM()
			VMOVDQU32(row(4*g, bt.qs), q[g].AsX())
			for i := 1; i < 4; i++ {
				VINSERTI32X4(U8(i), row(4*g+i, bt.qs), q[g], q[g])
			}
		}
		// Rows 0-7 (from q0, q1) and 8-15 (q2, q3) of dwords 0,1 and 2,3.
		t := func(a, b, idx VecVirtual) VecVirtual {
			d := ZMM()
			VMOVDQA64(a, d)
			VPERMT2D(b, idx, d)
			return d
		}
		a01, a23 := t(q[0], q[1], i01), t(q[0], q[1], i23)
		b01, b23 := t(q[2], q[3], i01), t(q[2], q[3], i23)
		for j, pair := range [][2]VecVirtual{{a01, b01}, {a23, b23}} {
			for h, imm := range []uint8{0x44, 0xee} {
				d := ZMM()
				VSHUFI64X2(U8(imm), pair[1], pair[0], d) // dword 2j+h of rows 0-15
				hi := ZMM()
				VPSRLW(U8(4), d, hi)
				VPANDD(lo, d, d)
				VPANDD(lo, hi, hi)
				steps[2*j+h], steps[2*j+h+4] = d, hi
			}
		}
	} else {
		// Eight zmm of 2 rows' qs; per 4 rows, dwords 0-3 and 4-7 in lanes
		// (dword%4)*4 + row%4; then a 4x4 transpose of 128-bit lanes.
		var lo4, hi4 [4]VecVirtual
		for g := range 4 {
			a, b := ZMM(), ZMM()
			VMOVDQU32(row(4*g, 2), a.AsY())
			VINSERTI64X4(U8(1), row(4*g+1, 2), a, a)
			VMOVDQU32(row(4*g+2, 2), b.AsY())
			VINSERTI64X4(U8(1), row(4*g+3, 2), b, b)
			lo4[g] = ZMM()
			VMOVDQA64(a, lo4[g])
			VPERMT2D(b, i01, lo4[g])
			VPERMT2D(b, i23, a)
			hi4[g] = a
		}
		for h, q := range [][4]VecVirtual{lo4, hi4} {
			s01a, s01b, s23a, s23b := ZMM(), ZMM(), ZMM(), ZMM()
			VSHUFI64X2(U8(0x44), q[1], q[0], s01a)
			VSHUFI64X2(U8(0xee), q[1], q[0], s01b)
			VSHUFI64X2(U8(0x44), q[3], q[2], s23a)
			VSHUFI64X2(U8(0xee), q[3], q[2], s23b)
			for i, src := range [][2]VecVirtual{{s01a, s23a}, {s01a, s23a}, {s01b, s23b}, {s01b, s23b}} {
				d := ZMM()
				imm := uint8(0x88)
				if i%2 == 1 {
					imm = 0xdd
				}
				VSHUFI64X2(U8(imm), src[1], src[0], d)
				VPXORD(c, d, d)
				steps[4*h+i] = d
			}
		}
	}
	if bt.qh != 0 {
		Comment("The fifth bits: the rows' qh (a gather), bits 4k..4k+3 to the bytes of step k, times 16.")
		k, t := K(), GP32()
		MOVL(U32(0xffff), t)
		KMOVW(t, k)
		g := ZMM()
		VMOVDQA64(zero, g)
		VPGATHERDD(Mem{Base: base[0], Index: gidx, Scale: 1, Disp: bt.qh}, k, g)
		nib, bytes1 := broadcastDword(0x0f), broadcastDword(0x01010101)
		for j, st := range steps {
			b := ZMM()
			VPSRLD(U8(4*j), g, b)
			VPANDD(nib, b, b)
			VPMULLD_BCST(spread4, b, b)
			VPANDD(bytes1, b, b)
			VPSLLD(U8(4), b, b)
			VPORD(b, st, st)
		}
	}
	if bt.table {
		table := ZMM()
		VBROADCASTI32X4(iq4nlTable, table)
		for _, st := range steps {
			VPSHUFB(st, table, st)
		}
	}
	for j, s := range steps {
		VMOVDQU64(s, Mem{Base: dp, Disp: 64 * j})
	}
	Comment("The rows' d: a gather of the dword at each row's block, the low word.")
	{
		k, t := K(), GP32()
		MOVL(U32(0xffff), t)
		KMOVW(t, k)
		g := ZMM()
		VMOVDQA64(zero, g)
		VPGATHERDD(Mem{Base: base[0], Index: gidx, Scale: 1}, k, g)
		h := YMM()
		VPMOVDW(g, h)
		f := ZMM()
		VCVTPH2PS(h, f)
		VMOVUPS(f, Mem{Base: dp, Disp: 512})
	}
	for _, b := range base {
		ADDQ(U8(bt.bytes), b)
	}
	ADDQ(U32(panelBlockBytes), dp)
	DECQ(cnt)
	JNZ(LabelRef("block"))
	VZEROUPPER()
	RET()
}

// vpdpbusdBcst emits VPDPBUSD.BCST m32, u8, acc: the signed bytes of the
// dword at m in every lane (see vpdpbusd).
func vpdpbusdBcst(m Mem, u8, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Suffixes: []string{"BCST"},
		Operands: []Op{m, u8, acc},
		Inputs:   []Op{m, u8, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

// panelMatMat generates matMatPanel{V}VNNI: a packed panel of 16 rows by V
// vectors; for resident panels (resident.go), whose d are float16,
// matMatPanelH{V}VNNI (Q8_0) and matMatPanelN{V}VNNI (Q4_0's nibbles).
// rl is nil for packed panels.
func panelMatMat(V int, rl *residentLayout) {
	name := fmt.Sprintf("matMatPanel%dVNNI", V)
	blockBytes, loads := panelBlockBytes, 8
	var lo VecVirtual
	switch {
	case rl == nil:
	case rl.nibbles:
		name = fmt.Sprintf("matMatPanelN%dVNNI", V)
	default:
		name = fmt.Sprintf("matMatPanelH%dVNNI", V)
	}
	if rl != nil {
		blockBytes, loads = rl.blockBytes, rl.loads()
	}
	if rl == nil {
		TEXT(name, NOSPLIT, "func(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)")
		Doc(name + " multiplies a packed panel by vectors; see internal/kernels/blocks_tile_amd64.go.")
	} else {
		TEXT(name, NOSPLIT, "func(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)")
		Doc(name + " multiplies a resident panel by vectors; see internal/kernels/resident_amd64.go.")
	}
	pp := Load(Param("p").Base(), GP64())
	// A resident panel is read from memory: each line is prefetched pf
	// bytes ahead (the next panel's lines past the end; the caller takes
	// the panels in order). A packed one was just written and is in L2.
	var pf Register
	if rl != nil {
		pf = Load(Param("pf"), GP64())
	}
	n := Load(Param("n"), GP64())
	n3 := times3(n)
	cnt := GP64()
	MOVQ(n, cnt)
	SHRQ(U8(5), cnt)
	xp := Load(Param("x").Base(), GP64())
	var xp4 GPVirtual
	if V > 4 {
		xp4 = GP64()
		LEAQ(Mem{Base: xp, Index: n, Scale: 4}, xp4)
	}
	xs := Load(Param("xsT").Base(), GP64())
	xc := Load(Param("xcT").Base(), GP64())
	xv := func(v, off int) Mem {
		if v < 4 {
			return rowAt(xp, n, n3, v, off)
		}
		return rowAt(xp4, n, n3, v-4, off)
	}
	facc := make([]VecVirtual, V)
	zero := ZMM()
	VPXORD(zero, zero, zero)
	if rl != nil && rl.nibbles {
		lo = broadcastByte(0x0f, true)
	}
	for v := range facc {
		facc[v] = ZMM()
		zeroFrom(zero, facc[v])
	}
	Label("block")
	acc := make([]VecVirtual, V)
	for v := range acc {
		acc[v] = ZMM()
		VPBROADCASTD(Mem{Base: xc, Disp: 4 * v}, acc[v])
	}
	for i := range loads {
		at := Mem{Base: pp, Disp: 64 * i}
		var js []int
		var ws []VecVirtual
		if rl == nil {
			w := ZMM()
			VMOVDQU64(at, w)
			js, ws = []int{i}, []VecVirtual{w}
		} else {
			js, ws = rl.steps(at, i, lo)
		}
		for k, j := range js {
			for v := range acc {
				vpdpbusdBcst(xv(v, 4*j), ws[k], acc[v])
			}
		}
	}
	if rl != nil {
		for i := range (blockBytes + 63) / 64 {
			PREFETCHT0(Mem{Base: pp, Index: pf, Scale: 1, Disp: 64 * i})
		}
	}
	d := ZMM()
	if rl != nil {
		VCVTPH2PS(Mem{Base: pp, Disp: rl.dOff()}, d)
	} else {
		VMOVUPS(Mem{Base: pp, Disp: 512}, d)
	}
	for v := range acc {
		VCVTDQ2PS(acc[v], acc[v])
		VMULPS(d, acc[v], acc[v])
		VFMADD231PS_BCST(Mem{Base: xs, Disp: 4 * v}, acc[v], facc[v])
	}
	ADDQ(U32(blockBytes), pp)
	ADDQ(U8(32), xp)
	if V > 4 {
		ADDQ(U8(32), xp4)
	}
	ADDQ(U8(4*V), xs)
	ADDQ(U8(4*V), xc)
	DECQ(cnt)
	JNZ(LabelRef("block"))

	op := Load(Param("out").Base(), GP64())
	m4 := Load(Param("m"), GP64())
	SHLQ(U8(2), m4)
	for v := range facc {
		if v > 0 {
			ADDQ(m4, op)
		}
		VMOVUPS(facc[v], Mem{Base: op})
	}
	VZEROUPPER()
	RET()
}

// broadcastDword returns a zmm with every dword v.
func broadcastDword(v uint32) VecVirtual {
	t := GP32()
	MOVL(U32(v), t)
	z := ZMM()
	VPBROADCASTD(t, z)
	return z
}
