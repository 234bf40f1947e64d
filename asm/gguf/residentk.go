package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// # Resident Q4_K panels
//
// Q4_K weights read into memory are repacked at load, like Q4_0's
// (resident.go), into panels of 16 rows with the rows in the dword lanes.
// A resident super-block is the 16 rows' super-blocks, 2304 bytes, exactly
// their bytes in the file, in the order the kernels read them:
//
//   - 12 rows of 16 bytes at kScOff: byte r of row i is row r's scales
//     byte i (the 6-bit scales and mins as the file packs them);
//   - the 16 rows' d (float16) at kDOff, their dmin at kDminOff;
//   - from kQsOff, 32 chunks of 64 bytes: dword r of chunk 8g+k is row r's
//     qs bytes 32g+4k..32g+4k+3, whose low nibbles are values 4k..4k+3 of
//     sub-block 2g and whose high nibbles the same of sub-block 2g+1.
//
// (With the scales after the quants, read from memory at the end of each
// 2304 bytes but needed after the first 512, TinyLlama-shaped Q4_K_M
// generation on one Zen 4 thread ran at 25-29 tok/s against the file
// layout's 31-36.)
//
// Per chunk an AND, a shift and an AND give two sub-blocks' nibbles, and
// VPDPBUSD with the activation's dword broadcast adds them into 16 rows'
// sub-block sums (at most 32*15*128, exact in int32). Each sub-block sum
// is multiplied by the rows' scale (VPMULLD; the scales are unpacked lane
// by lane: VPMOVZXBD, a mask, or a shift and a VPTERNLOGD bit select for
// the last four) and added into the rows' integer super-block sum; the
// mins' sum Σ m_j*xsum_j is 4 VPDPWSSD of the mins as word pairs with the
// block sums' pairs; so that per row and super-block
//
//	f = float(Σ sc_j*A_j)*d - float(Σ m_j*xsum_j)*dmin   (one FMA)
//	total += f * xs                                       (one FMA)
//
// in the same order in the matrix-vector and the panel kernels, so a row's
// value does not depend on the batch. The file layout's kernels (../kquant)
// sum 4 products per lane, pack them to words and fold 16 lanes a row at
// the end: 147 instructions per 4 rows and super-block (37 a row), where
// the matrix-vector kernel here spends 329 per 16 rows (21 a row: 32
// loads, 96 unpacking, 64 VPDPBUSD, the rest scales, mins, floats and
// prefetches), and the file's kernels were compute-bound on Zen 4 (29-30
// GB/s from L2, against 62 here).
const (
	kResBlockBytes = 16 * 144
	kScOff         = 0
	kDOff          = kScOff + 12*16
	kDminOff       = kDOff + 32
	kQsOff         = kDminOff + 32
)

var kMask63 Mem

func residentKData() {
	kMask63 = GLOBL("ggufk63", RODATA|NOPTR)
	DATA(0, U32(63))
}

// zeroIdiom emits VPXORD v, v, v declared as reading nothing (avo's
// liveness would see v live since the function's entry and run out of
// registers).
func zeroIdiom(v Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPXORD",
		Operands: []Op{v, v, v},
		Outputs:  []Op{v},
		ISA:      []string{"AVX512F"},
	})
}

// kScale returns a zmm of the 16 rows' scale (or min, if min) of
// sub-block j, as dwords, from the block blk addresses (llama.cpp's
// get_scale_min_k4, lane by lane; lo holds bytes 0x0f).
func kScale(blk func(off int) Mem, j int, min bool, lo VecVirtual) VecVirtual {
	row := func(i int) Mem { return blk(kScOff + 16*i) }
	if j < 4 {
		i := j
		if min {
			i += 4
		}
		v := ZMM()
		VPMOVZXBD(row(i), v)
		VPANDD_BCST(kMask63, v, v)
		return v
	}
	i := j - 4
	a, b := ZMM(), ZMM()
	VPMOVZXBD(row(i+8), a) // low 4 bits: low nibble (scales), high (mins)
	if min {
		VPSRLD(U8(4), a, a)
		i += 4
	}
	VPMOVZXBD(row(i), b) // top 2 bits: bits 6, 7 of byte i (mins: i+4)
	VPSRLD(U8(2), b, b)
	VPTERNLOGD(U8(0xe4), lo, b, a) // lo ? a : b, bit by bit
	return a
}

// kAct addresses a kernel's activation: vector v's byte off of the current
// super-block, its scale, and its block sums: Q4_K's kernels read sums 2i
// and 2i+1 as the words of dword i (sums(v, i)), Q6_K's -32 times the sum
// of sub-block j's 16 values as dword j.
type kAct struct {
	x    func(v, off int) Mem
	xs   func(v int) Mem
	sums func(v, i int) Mem
}

// vpdpwssdBcst emits VPDPWSSD.BCST m32, a, acc: for each dword lane, acc
// += the sum of the 2 products of the signed words of a and of the dword
// at m.
func vpdpwssdBcst(m Mem, a, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPWSSD",
		Suffixes: []string{"BCST"},
		Operands: []Op{m, a, acc},
		Inputs:   []Op{m, a, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

// # Resident Q5_K panels
//
// A Q5_K super-block of 16 rows (2816 bytes) is Q4_K's with 8 chunks of
// qh among the quants, each before the first chunk of nibbles that uses
// it (q5QhAt, q5QsAt: the panels are read in order, as memory streams
// best): dword r of qh chunk k is row r's qh bytes 4k..4k+3, whose bit j
// is the fifth bit of values 4k.. of sub-block j. For each chunk of
// nibbles the qh chunk is shifted so that bit j lands on bit 4, masked
// (0x10) and bit-selected under the nibble (VPTERNLOGD): 5-bit values for
// the same VPDPBUSD, and the rest is Q4_K's.
const q5ResBlockBytes = 16 * 176

// q5QhAt and q5QsAt are the offsets of qh chunk k and of nibble chunk c
// in a resident Q5_K super-block: qh k, nibbles k for k < 8, then
// nibbles 8-31.
func q5QhAt(k int) int { return kQsOff + 128*k }

func q5QsAt(c int) int {
	if c < 8 {
		return kQsOff + 128*c + 64
	}
	return kQsOff + 1024 + 64*(c-8)
}

// kSuperBlock emits one resident super-block of S panels (blk(s, off)
// addresses panel s's) by V vectors: f (see above) times the vector's
// scale is added into facc(s, v), a register or memory. prefetch(s, line),
// if not nil, is called once per 64-byte line of a super-block. With hb
// (bytes 0x10) it is a Q5_K super-block, else Q4_K's.
func kSuperBlock(S, V int, blk func(s, off int) Mem, act kAct, lo, hb VecVirtual, prefetch func(s, line int), facc func(s, v int) Op) {
	q5 := hb != nil
	qsAt := func(c int) int { return kQsOff + 64*c }
	if q5 {
		qsAt = q5QsAt
	}
	sumi := make([][]VecVirtual, S)
	for s := range sumi {
		sumi[s] = make([]VecVirtual, V)
	}
	for g := range 4 {
		acc := make([][][2]VecVirtual, S)
		for s := range acc {
			acc[s] = make([][2]VecVirtual, V)
			for v := range acc[s] {
				for h := range 2 {
					acc[s][v][h] = ZMM()
					zeroIdiom(acc[s][v][h])
				}
			}
		}
		for k := range 8 {
			c := 8*g + k
			for s := range S {
				if prefetch != nil {
					if c < 4 {
						prefetch(s, c) // scales, d and dmin
					}
					switch {
					case !q5:
						prefetch(s, 4+c)
					case c < 8: // qh and nibbles
						prefetch(s, 4+2*c)
						prefetch(s, 5+2*c)
					default:
						prefetch(s, 12+c)
					}
				}
				w, hi := ZMM(), ZMM()
				VMOVDQU64(blk(s, qsAt(c)), w)
				VPSRLW(U8(4), w, hi)
				if q5 {
					// Bits 2g and 2g+1 of the qh bytes to bit 4 (word
					// shifts: each bit stays in its byte), under the
					// nibbles.
					qh := ZMM()
					VMOVDQU64(blk(s, q5QhAt(k)), qh)
					for j, x := range []*VecVirtual{&w, &hi} {
						t := ZMM()
						switch b := 2*g + j; {
						case b < 4:
							VPSLLW(U8(4-b), qh, t)
						case b == 4:
							VMOVDQA64(qh, t)
						default:
							VPSRLW(U8(b-4), qh, t)
						}
						VPANDD(hb, t, t)
						VPTERNLOGD(U8(0xd8), lo, *x, t) // lo ? x : t, bit by bit
						*x = t
					}
				} else {
					VPANDD(lo, w, w)
					VPANDD(lo, hi, hi)
				}
				for v := range V {
					vpdpbusdBcst(act.x(v, 64*g+4*k), w, acc[s][v][0])
					vpdpbusdBcst(act.x(v, 64*g+32+4*k), hi, acc[s][v][1])
				}
			}
		}
		for s := range S {
			bs := func(off int) Mem { return blk(s, off) }
			for h := range 2 {
				sc := kScale(bs, 2*g+h, false, lo)
				for v := range V {
					if g == 0 && h == 0 {
						sumi[s][v] = ZMM()
						VPMULLD(sc, acc[s][v][h], sumi[s][v])
						continue
					}
					VPMULLD(sc, acc[s][v][h], acc[s][v][h])
					VPADDD(acc[s][v][h], sumi[s][v], sumi[s][v])
				}
			}
		}
	}
	for s := range S {
		bs := func(off int) Mem { return blk(s, off) }
		var m [8]VecVirtual
		for j := range m {
			m[j] = kScale(bs, j, true, lo)
		}
		// The mins of sub-blocks 2i and 2i+1 as the words of a dword: 4
		// VPDPWSSD with the block sums' pairs instead of 8 VPMULLD and 7
		// VPADDD (the multiplier port bounds the batched kernels, with their
		// 64 VPDPBUSD a vector and super-block).
		var mp [4]VecVirtual
		for i := range mp {
			mp[i] = m[2*i]
			VPSLLD(U8(16), m[2*i+1], m[2*i+1])
			VPORD(m[2*i+1], mp[i], mp[i])
		}
		d, dmin := ZMM(), ZMM()
		VCVTPH2PS(blk(s, kDOff), d)
		VCVTPH2PS(blk(s, kDminOff), dmin)
		for v := range V {
			msum := ZMM()
			zeroIdiom(msum)
			for i := range mp {
				vpdpwssdBcst(act.sums(v, i), mp[i], msum)
			}
			VCVTDQ2PS(msum, msum)
			VMULPS(dmin, msum, msum)
			f := sumi[s][v]
			VCVTDQ2PS(f, f)
			VFMSUB231PS(d, f, msum) // d*float(sumi) - dmin*float(msum)
			if r, ok := facc(s, v).(VecVirtual); ok {
				VFMADD231PS_BCST(act.xs(v), msum, r)
				continue
			}
			acc := ZMM()
			VMOVUPS(facc(s, v), acc)
			VFMADD231PS_BCST(act.xs(v), msum, acc)
			VMOVUPS(acc, facc(s, v))
		}
	}
}

// kLayout is a resident K-quant layout as the drivers below see it.
type kLayout struct {
	name       string // the block type, in the kernels' names
	short      string // in the panel kernels' names: matMatPanel{short}{V}VNNI
	blockBytes int    // 16 of the file's super-blocks
	auxBytes   int    // of aux, a vector and super-block
	goFile     string // where the Go declarations are
	// setup emits the kernel's constants and returns its super-block
	// (kSuperBlock or q6SuperBlock with them).
	setup func() func(S, V int, blk func(s, off int) Mem, act kAct, prefetch func(s, line int), facc func(s, v int) Op)
}

var (
	residentQ4_K = kLayout{"Q4_K", "K", kResBlockBytes, 64, "residentk_amd64.go", func() func(int, int, func(int, int) Mem, kAct, func(int, int), func(int, int) Op) {
		lo := broadcastByte(0x0f, true)
		return func(S, V int, blk func(s, off int) Mem, act kAct, prefetch func(s, line int), facc func(s, v int) Op) {
			kSuperBlock(S, V, blk, act, lo, nil, prefetch, facc)
		}
	}}
	residentQ5_K = kLayout{"Q5_K", "Q5_", q5ResBlockBytes, 64, "residentk_amd64.go", func() func(int, int, func(int, int) Mem, kAct, func(int, int), func(int, int) Op) {
		lo, hb := broadcastByte(0x0f, true), broadcastByte(0x10, true)
		return func(S, V int, blk func(s, off int) Mem, act kAct, prefetch func(s, line int), facc func(s, v int) Op) {
			kSuperBlock(S, V, blk, act, lo, hb, prefetch, facc)
		}
	}}
	residentQ6_K = kLayout{"Q6_K", "Q6_", q6ResBlockBytes, 128, "residentq6_amd64.go", func() func(int, int, func(int, int) Mem, kAct, func(int, int), func(int, int) Op) {
		lo, m30 := broadcastByte(0x0f, true), broadcastByte(0x30, true)
		return func(S, V int, blk func(s, off int) Mem, act kAct, prefetch func(s, line int), facc func(s, v int) Op) {
			q6SuperBlock(S, V, blk, act, lo, m30, prefetch, facc)
		}
	}}
)

// act addresses the activation of vector v at x(v, off), its scale and
// sums in aux from ap (auxBytes a vector: the sums' dwords, then the
// scale's bits at auxBytes/2).
func (l kLayout) act(x func(v, off int) Mem, ap Register) kAct {
	return kAct{
		x:    x,
		xs:   func(v int) Mem { return Mem{Base: ap, Disp: l.auxBytes*v + l.auxBytes/2} },
		sums: func(v, i int) Mem { return Mem{Base: ap, Disp: l.auxBytes*v + 4*i} },
	}
}

// residentKMatVec generates matVecPanel{Q4_K,Q5_K,Q6_K}VNNI: resident panels
// times one vector, 4 panels a quarter of the rows apart at a time (then
// the last panels%4 one at a time) as residentMatVec does, or in order
// (matVecPanel{Q4_K,Q5_K,Q6_K}SeqVNNI, Zen 4's choice), each line prefetched pf
// bytes ahead.
func residentKMatVec(rl kLayout, apart bool) {
	name := matVecName(rl.name, apart)
	TEXT(name, NOSPLIT, "func(out []float32, p []byte, xq []int8, aux []uint32, pf int)")
	Doc(name + " multiplies resident " + rl.name + " panels by a vector; see internal/kernels/" + rl.goFile + ".")
	body := rl.setup()
	xp, ap, cnt, wpf := GP64(), GP64(), GP64(), GP64()
	act := rl.act(func(_, off int) Mem { return Mem{Base: xp, Disp: off} }, ap)
	panelsApart(rl.blockBytes, 256, apart, func(S int, l func(string) string, wp GPVirtual, at func(s, off int) Mem, qpb, qpb3 gpr) []VecVirtual {
		Load(Param("xq").Base(), xp)
		Load(Param("aux").Base(), ap)
		Load(Param("xq").Len(), cnt)
		SHRQ(U8(8), cnt)
		facc := make([]VecVirtual, S)
		for s := range facc {
			facc[s] = ZMM()
			zeroIdiom(facc[s])
		}
		Label(l("block"))
		Load(Param("pf"), wpf)
		ADDQ(wp, wpf)
		body(S, 1, at, act,
			func(s, line int) { PREFETCHT0(rowAt(wpf, qpb, qpb3, s, 64*line)) },
			func(s, _ int) Op { return facc[s] })
		ADDQ(U32(rl.blockBytes), wp)
		ADDQ(U32(256), xp)
		ADDQ(U32(rl.auxBytes), ap)
		DECQ(cnt)
		JNZ(LabelRef(l("block")))
		return facc
	})
	VZEROUPPER()
	RET()
}

// residentKMatMat generates matMatPanel{K,Q5_,Q6_}{V}VNNI: a resident panel by
// V vectors (n apart in x), their scales and sums in aux (auxBytes a
// vector and super-block), the sums kept on the stack, each line of the
// panel prefetched pf bytes ahead (past the panel's end, the next panel's
// lines: the caller takes the panels in order). Without prefetches, 8
// vectors of the TinyLlama-shaped Q4_K_M file read from memory ran at
// half their speed from L3 on an Intel Xeon (family 6 model 207).
func residentKMatMat(rl kLayout, V int) {
	name := fmt.Sprintf("matMatPanel%s%dVNNI", rl.short, V)
	TEXT(name, 0, "func(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)") // 64*V bytes of frame
	Doc(name + " multiplies a resident " + rl.name + " panel by vectors; see internal/kernels/" + rl.goFile + ".")
	sums := AllocLocal(64 * V)
	pp := Load(Param("p").Base(), GP64())
	n := Load(Param("n"), GP64())
	n3 := times3(n)
	cnt := GP64()
	MOVQ(n, cnt)
	SHRQ(U8(8), cnt)
	xp := Load(Param("x").Base(), GP64())
	var xp4 GPVirtual
	if V > 4 {
		xp4 = GP64()
		LEAQ(Mem{Base: xp, Index: n, Scale: 4}, xp4)
	}
	ap := Load(Param("aux").Base(), GP64())
	act := rl.act(func(v, off int) Mem {
		if v < 4 {
			return rowAt(xp, n, n3, v, off)
		}
		return rowAt(xp4, n, n3, v-4, off)
	}, ap)
	pf := Load(Param("pf"), GP64())
	body := rl.setup()
	{
		z := ZMM()
		zeroIdiom(z)
		for v := range V {
			VMOVUPS(z, sums.Offset(64*v))
		}
	}
	Label("block")
	body(1, V, func(_, off int) Mem { return Mem{Base: pp, Disp: off} }, act,
		func(_, line int) { PREFETCHT0(Mem{Base: pp, Index: pf, Scale: 1, Disp: 64 * line}) },
		func(_, v int) Op { return sums.Offset(64 * v) })
	ADDQ(U32(rl.blockBytes), pp)
	ADDQ(U32(256), xp)
	if V > 4 {
		ADDQ(U32(256), xp4)
	}
	ADDQ(U32(rl.auxBytes*V), ap)
	DECQ(cnt)
	JNZ(LabelRef("block"))

	op := Load(Param("out").Base(), GP64())
	m4 := Load(Param("m"), GP64())
	SHLQ(U8(2), m4)
	for v := range V {
		if v > 0 {
			ADDQ(m4, op)
		}
		t := ZMM()
		VMOVUPS(sums.Offset(64*v), t)
		VMOVUPS(t, Mem{Base: op})
	}
	VZEROUPPER()
	RET()
}
