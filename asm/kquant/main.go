// Command kquant generates model/kernels_kquant_amd64.s, the matrix-vector
// kernels of GGUF's K-quants (Q4_K, Q5_K, Q6_K) for package model, with avo
// (github.com/mmcloughlin/avo).
//
//	cd asm && go run ./kquant -out ../model/kernels_kquant_amd64.s -pkg model
//
// (or `go generate ./model/`, see model/kernels_kquant_amd64.go). The Go
// declarations, with the loop each routine computes, are hand-written in
// model/kernels_kquant_amd64.go; go vet's asmdecl check compares the
// signatures.
//
// # What the kernels compute
//
// Each VNNI matrix-vector kernel walks R rows (R = 4, or 1 for the last
// rows) of super-blocks of 256 values and, per super-block, does once for
// the R rows what only depends on the activation, then per row:
//
//   - unpack the quants to bytes 0..15, 0..31 or 0..63 (unsigned: VPDPBUSD
//     multiplies them by the signed activation bytes as they are), in four
//     zmm of 64, and VPDPBUSD each against the matching 64 activation bytes
//     into a fresh accumulator: every dword lane then holds the sum of 4
//     products of one sub-block, at most 4*63*128 in magnitude;
//   - pack the four accumulators to words with VPACKSSDW (exact: the lanes
//     fit in int16) and VPMADDWD them with the sub-blocks' scales, one word
//     per lane: 32 dwords of sc*(sum of 8 products), each of one sub-block;
//   - convert to float, multiply by the activation scale of each lane's
//     32-block (a vector shared by the rows), multiply by d and add into the
//     row's float accumulator; for Q4_K and Q5_K the mins come in as
//     8 lanes of m_j * (xs_j*xsum_j) (again shared), times dmin, subtracted.
//
// So no horizontal sum happens inside the loop: each row's accumulator is
// reduced once, at the end. The Go driver passes the rows in blocks of 4 and
// the rest one by one. The tile kernels (tile.go) do the same per row for 4
// vectors whose shared values the Go caller prepares; the AVX2 kernels
// (avx2.go) take another route to the same sums.
//
// Q6_K subtracts its 32 before the scales: each accumulator starts from
// -32*(sum of the lane's 4 activation bytes), computed once per
// super-block for all rows.
//
// # Layouts
//
// Q4_K/Q5_K: a zmm of qs bytes 0..63 holds sub-blocks 0 and 2 in its low
// nibbles (bytes 0..31, 32..63) and 1 and 3 in its high nibbles, so the
// activation is loaded as [x 0..31 | x 64..95] and [x 32..63 | x 96..127]
// (two ymm halves). Q6_K's ql bytes 0..63 hold values 0..63 in their low
// nibbles and 64..127 in their high ones: the activation is used as it is.
// The 12 bytes of 6-bit scales and mins are unpacked with two VPSHUFB and a
// few masks (see unpackScales).
package main

import (
	"github.com/mmcloughlin/avo/ir"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

const z = 0x80 // VPSHUFB index that writes a zero byte

func main() {
	ConstraintExpr("amd64,!purego")
	for _, r := range []int{4, 1} {
		q45("matVecQ4_K", 144, r)
		q45("matVecQ5_K", 176, r)
		q6(r)
	}
	tile("matMatQ4_Kx4VNNI", 144)
	tile("matMatQ5_Kx4VNNI", 176)
	tile("matMatQ6_Kx4VNNI", 210)
	for _, r := range []int{2, 1} {
		q45AVX2("matVecQ4_K", 144, r)
		q45AVX2("matVecQ5_K", 176, r)
		q6AVX2(r)
	}
	Generate()
}

// constant declares read-only data from bytes.
func constant(name string, b []byte) Mem {
	m := GLOBL(name, RODATA|NOPTR)
	for i, v := range b {
		DATA(i, U8(v))
	}
	return m
}

func repeat(n int, v ...byte) []byte {
	var b []byte
	for range n {
		b = append(b, v...)
	}
	return b
}

func dwords(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	}
	return b
}

func words(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x), byte(x>>8))
	}
	return b
}

var consts = map[string]Mem{}

// c returns the named constant, declaring it the first time.
func c(name string, b func() []byte) Mem {
	if m, ok := consts[name]; ok {
		return m
	}
	m := constant("kq"+name, b())
	consts[name] = m
	return m
}

// vpdpbusd emits VPDPBUSD s8, u8, acc (Go operand order): for each dword
// lane, acc += the sum of the 4 products of the unsigned bytes of u8 with
// the signed bytes of s8. avo v0.5.0's table predates AVX-512 VNNI, so the
// instruction is built by hand (the Go assembler knows it).
func vpdpbusd(s8, u8, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPDPBUSD",
		Operands: []Op{s8, u8, acc},
		Inputs:   []Op{s8, u8, acc},
		Outputs:  []Op{acc},
		ISA:      []string{"AVX512_VNNI"},
	})
}

// zero emits VPXORD v, v, v, the zero idiom, declared to avo as reading
// nothing: avo's liveness would otherwise see v live since the function's
// entry (it knows the idiom only for VEX VXORPS/VPXOR), and would run out
// of registers. Zeroing a zmm before writing its low half (marked "for
// avo") tells avo all of it is set; the CPU drops zero idioms at rename.
func zero(v Op) {
	Instruction(&ir.Instruction{
		Opcode:   "VPXORD",
		Operands: []Op{v, v, v},
		Outputs:  []Op{v},
		ISA:      []string{"AVX512F"},
	})
}

// kernel holds the registers of a kernel's loops.
type kernel struct {
	r          int  // rows per block: 4, 2 or 1
	avx2       bool // ymm accumulators and VEX instructions only
	blockBytes int
	wp         Register // row 0's current super-block
	rb, rb3    Register // bytes per row, 3 times that
	xp, xsp    Register // current super-block of xq, of xs
	xsump      Register // of xsum
	cnt, pf    Register // super-blocks left in the row; prefetch pointer
	shared     Mem      // stack space (AVX2 kernels)
	rows       Register // rows left (a multiple of r)
	acc        []VecVirtual
}

const signature = "func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)"

// prologue starts a kernel: rb = len(xq)/256 * blockBytes.
func prologue(name string, blockBytes, r int, avx2 bool) *kernel {
	TEXT(name, NOSPLIT, signature)
	Doc(name+" is a K-quant matrix-vector kernel for blocks of "+[]string{"", "one row", "2 rows", "", "4 rows"}[r]+".",
		"The caller guarantees the preconditions; see model/kernels_kquant_amd64.go.")
	k := &kernel{r: r, blockBytes: blockBytes, avx2: avx2}
	k.rows = Load(Param("out").Len(), GP64())
	TESTQ(k.rows, k.rows)
	JZ(LabelRef("done"))
	k.wp = Load(Param("w").Base(), GP64())
	k.rb = Load(Param("xq").Len(), GP64())
	SHRQ(U8(8), k.rb)
	IMUL3Q(U32(blockBytes), k.rb, k.rb)
	k.rb3 = GP64()
	LEAQ(Mem{Base: k.rb, Index: k.rb, Scale: 2}, k.rb3)
	k.xp, k.xsp, k.xsump, k.cnt, k.pf = GP64(), GP64(), GP64(), GP64(), GP64()
	// The VNNI kernels keep the values shared by the rows in registers:
	// stored to the stack and read back as memory operands by each row,
	// they ran at half the speed (Q4_K 512x2048 from L2: 67 µs against
	// 20-35 µs; Q6_K 41-170 µs against 21 µs), the loads waiting on the
	// 64-byte stores. The AVX2 kernels put a few values there.
	if avx2 {
		k.shared = AllocLocal(8 * 32)
	}
	return k
}

// row addresses byte off of row r's current super-block.
func (k *kernel) row(r, off int) Mem {
	switch r {
	case 0:
		return Mem{Base: k.wp, Disp: off}
	case 1:
		return Mem{Base: k.wp, Index: k.rb, Scale: 1, Disp: off}
	case 2:
		return Mem{Base: k.wp, Index: k.rb, Scale: 2, Disp: off}
	}
	return Mem{Base: k.wp, Index: k.rb3, Scale: 1, Disp: off}
}

// blockStart zeroes the accumulators and points at the activation's start.
func (k *kernel) blockStart() {
	Label("block")
	k.acc = make([]VecVirtual, k.r)
	for i := range k.acc {
		if k.avx2 {
			k.acc[i] = YMM()
			VXORPS(k.acc[i], k.acc[i], k.acc[i])
		} else {
			k.acc[i] = ZMM()
			zero(k.acc[i])
		}
	}
	Load(Param("xq").Base(), k.xp)
	Load(Param("xs").Base(), k.xsp)
	Load(Param("xsum").Base(), k.xsump)
	Load(Param("xq").Len(), k.cnt)
	SHRQ(U8(8), k.cnt)
	if k.r == 4 {
		LEAQ(Mem{Base: k.wp, Index: k.rb, Scale: 8}, k.pf)
	}
	Label("superblock")
}

// prefetch fetches the block of 4 rows after the next one (4*rb contiguous
// bytes) at the pace this block consumes its own: the hardware prefetchers
// follow each row but stall at every jump to the next 4 rows (as measured
// for the Q8_0 kernels; past the end of w the prefetches are harmless).
func (k *kernel) prefetch() {
	if k.r != 4 {
		return
	}
	bytes := 4 * k.blockBytes
	for off := 0; off < bytes; off += 64 {
		PREFETCHT0(Mem{Base: k.pf, Disp: off})
	}
	ADDQ(U32(bytes), k.pf)
}

// next moves to the next super-block and loops.
func (k *kernel) next() {
	k.prefetch()
	ADDQ(U32(k.blockBytes), k.wp)
	ADDQ(U32(256), k.xp)
	ADDQ(U8(32), k.xsp)
	ADDQ(U8(32), k.xsump)
	DECQ(k.cnt)
	JNZ(LabelRef("superblock"))
}

// blockEnd sums each row's accumulator, stores the R results, moves to the
// next block of rows and loops; label done follows. wp has moved through
// row 0 to the start of row 1.
func (k *kernel) blockEnd() {
	Comment("Sum each row's lanes and store the block's results.")
	xs := make([]VecVirtual, k.r)
	for i, a := range k.acc {
		h := a
		if !k.avx2 {
			h = YMM()
			VEXTRACTF64X4(U8(1), a, h)
			VADDPS(h, a.AsY(), h)
		}
		x := XMM()
		VEXTRACTF128(U8(1), h, x)
		VADDPS(x, h.AsX(), x)
		xs[i] = x
	}
	res := XMM()
	if k.r == 4 {
		VHADDPS(xs[1], xs[0], xs[0]) // [a01 a23 b01 b23]
		VHADDPS(xs[3], xs[2], xs[2])
		VHADDPS(xs[2], xs[0], res) // [a b c d]
	} else if k.r == 2 {
		VHADDPS(xs[1], xs[0], xs[0])
		VHADDPS(xs[0], xs[0], res) // [a b a b]
	} else {
		VHADDPS(xs[0], xs[0], xs[0])
		VHADDPS(xs[0], xs[0], res)
	}
	op := Load(Param("out").Base(), GP64())
	i := Load(Param("out").Len(), GP64())
	SUBQ(k.rows, i) // index of the block's first row
	switch k.r {
	case 4:
		VMOVUPS(res, Mem{Base: op, Index: i, Scale: 4})
		ADDQ(k.rb3, k.wp)
	case 2:
		VMOVSD(res, Mem{Base: op, Index: i, Scale: 4})
		ADDQ(k.rb, k.wp)
	default:
		VMOVSS(res, Mem{Base: op, Index: i, Scale: 4})
	}
	SUBQ(U8(k.r), k.rows)
	JNZ(LabelRef("block"))
	Label("done")
	VZEROUPPER()
	RET()
}

// sharedSlot addresses 64-byte slot i of the stack space.
func (k *kernel) sharedSlot(i int) Mem { return k.shared.Offset(64 * i) }

// xsVectors loads the super-block's 8 activation scales and spreads them
// over two zmm in the lane order of the packed sums (idx0, idx1: the 32-block
// of each dword lane).
func (k *kernel) xsVectors(name string, idx0, idx1 []uint32) (xsy VecVirtual, xs0, xs1 Op) {
	xsy = YMM()
	zero(xsy.AsZ()) // (for avo: all of the zmm is set)
	VMOVUPS(Mem{Base: k.xsp}, xsy)
	v0, v1 := ZMM(), ZMM()
	i0, i1 := ZMM(), ZMM()
	VMOVDQU64(c(name+"xs0", func() []byte { return dwords(idx0...) }), i0)
	VMOVDQU64(c(name+"xs1", func() []byte { return dwords(idx1...) }), i1)
	VPERMPS(xsy.AsZ(), i0, v0)
	VPERMPS(xsy.AsZ(), i1, v1)
	return xsy, v0, v1
}

// scaleSums packs the four accumulators' dwords to words (a0, a1 into p0;
// a2, a3 into p1), multiplies them by the word scales sc0, sc1 and adds
// d*(p0*xs0 + p1*xs1) into acc.
func scaleSums(a [4]VecVirtual, sc0, sc1, xs0, xs1, d, acc Op) {
	p0, p1 := ZMM(), ZMM()
	VPACKSSDW(a[1], a[0], p0)
	VPACKSSDW(a[3], a[2], p1)
	VPMADDWD(sc0, p0, p0)
	VPMADDWD(sc1, p1, p1)
	f0, f1 := ZMM(), ZMM()
	VCVTDQ2PS(p0, f0)
	VCVTDQ2PS(p1, f1)
	VMULPS(xs0, f0, f0)
	VFMADD231PS(xs1, f1, f0)
	VFMADD231PS(d, f0, acc)
}
