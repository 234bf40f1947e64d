// Command kquant generates internal/kernels/kquant_amd64.s, the matrix-vector
// kernels of GGUF's K-quants (Q4_K, Q5_K, Q6_K) for package model, with avo
// (github.com/mmcloughlin/avo).
//
//	cd asm && go run ./kquant -out ../internal/kernels/kquant_amd64.s -pkg kernels
//
// (or `go generate ./internal/kernels/`, see internal/kernels/kquant_amd64.go). The Go
// declarations, with the loop each routine computes, are hand-written in
// internal/kernels/kquant_amd64.go; go vet's asmdecl check compares the
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
//     fit in int16), VPMADDWD two of them with the sub-blocks' scales and
//     VPDPWSSD the other two in: 16 dwords of sums of sc*(sum of 4
//     products);
//   - convert to float and add times d*xs into the row's float
//     accumulator. The activation has one scale xs per super-block
//     (internal/kernels/qblock.go), so this is one conversion and one FMA.
//
// Q4_K's and Q5_K's mins are done for the 4 rows at once: the rows' 16-byte
// headers (d, dmin, the 12 bytes of scales) are loaded into one zmm, one
// row per 128-bit lane, and unpacked together (unpackScales); VPMADDWD of
// the mins (words) with the super-block's 8 block sums xsum_j gives 4
// dwords per row, which are converted and subtracted times dmin*xs into an
// accumulator of mins, 4 lanes per row. The same zmm gives d and dmin as
// floats (VPERMW, VCVTPH2PS), and each row takes its lane of scales and of
// d with a VSHUFI32X4. Against the kernels that did all this per row, with
// an activation scale per 32 values, this took Q4_K 512x2048 from L2 from
// 33 to 43-47 GB/s and Q5_K from 31 to 38-39 (Zen 5, 3 alternated runs),
// and TinyLlama-shaped Q4_K_M generation from 34 to 41-42 tok/s at 1
// thread, 55 to 65-68 at 2. (Removing the scales' unpacking, d's
// conversion or the mins from the old kernel had each sped it up by 11-23%:
// on Zen 5 the kernel's time went with its instruction count.)
//
// So no horizontal sum happens inside the loop: each row's accumulator is
// reduced once, at the end, by the same tree whatever rows it goes with
// (blockEnd), the mins' 4 lanes added first. The Go driver passes all but the last len(out)%4 rows to the
// x4 kernel, which takes rows i, q+i, 2q+i and 3q+i together (q = a quarter
// of them; see "Rows apart"), and the rest to the x1 kernel. The tile
// kernels (tile.go) do the same per row for 4 vectors whose shared values
// the Go caller prepares; the AVX2 kernels (avx2.go) take another route to
// the same sums, 2 rows at a time, half the rows apart.
//
// Q6_K subtracts its 32 before the scales: each accumulator starts from
// -32*(sum of the lane's 4 activation bytes), computed once per
// super-block for all rows. Its scales and d stay per row (16 signed bytes
// and an f16 at the end of the block).
//
// # Rows apart
//
// 4 adjacent rows are 4 memory streams about 1 KiB apart (a row of 2048
// values is 1152 bytes of Q4_K), which the Zen 5 VM reads from memory much
// slower than 4 streams far apart, as the Q8_0 kernels found (../gguf).
// Streaming ~600 MB of 5632x2048 matrices from anonymous huge pages through
// matVecQ*_K, 1 thread, GB/s, medians of 11 alternating runs of the old
// and new test binaries (noisy: another job shared the machine): VNNI
// Q4_K 19.7 -> 24.5, Q5_K 19.3 -> 24.9, Q6_K 19.7 -> 26.4 (the adjacent
// rows had a software prefetch of the next blocks of rows, see prefetchDist);
// AVX2 (2 rows, no prefetch before or after) Q4_K 9.3 -> 13.6, Q5_K 9.3 ->
// 14.4, Q6_K 5.7 -> 12.1. In a quiet window, passes over the same buffer
// interleaved in one process (medians of 31): VNNI Q4_K 21.8 -> 27.9, Q5_K
// 20.4 -> 26.5, Q6_K 20.9 -> 30.0; AVX2 Q4_K 9.7 -> 14.5, Q5_K 9.8 -> 15.3,
// Q6_K 6.4 -> 14.6. From L2 and L3 (BenchmarkMatVecKQuant) the order
// changes nothing beyond the noise.
//
// # Layouts
//
// Q4_K/Q5_K: a zmm of qs bytes 0..63 holds sub-blocks 0 and 2 in its low
// nibbles (bytes 0..31, 32..63) and 1 and 3 in its high nibbles, so the
// activation is loaded as [x 0..31 | x 64..95] and [x 32..63 | x 96..127]
// (two ymm halves). Q6_K's ql bytes 0..63 hold values 0..63 in their low
// nibbles and 64..127 in their high ones: the activation is used as it is.
// The 12 bytes of 6-bit scales and mins, bytes 4..15 of the header, are
// unpacked with two VPSHUFB and a few masks (see unpackScales).
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
func vpdpbusd(s8, u8, acc Op) { vnni("VPDPBUSD", s8, u8, acc) }

// vpdpwssd emits VPDPWSSD a, b, acc: for each dword lane, acc += the sum of
// the 2 products of the signed words of a and b.
func vpdpwssd(a, b, acc Op) { vnni("VPDPWSSD", a, b, acc) }

func vnni(opcode string, a, b, acc Op) {
	Instruction(&ir.Instruction{
		Opcode:   opcode,
		Operands: []Op{a, b, acc},
		Inputs:   []Op{a, b, acc},
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
	stride     Register // bytes from one row of the block to the next
	stride3    Register // 3 times that (4 rows)
	op         Register // row 0's out
	ostride    Register // bytes from one row's out to the next (r > 1)
	ostride3   Register // 3 times that (4 rows)
	xp, xsp    Register // current super-block of xq, of xs
	xsump      Register // of xsum
	cnt        Register // super-blocks left in the row
	shared     Mem      // stack space (AVX2 kernels)
	rows       Register // blocks of rows left
	acc        []VecVirtual
	macc       VecVirtual // the mins' accumulator (Q4_K, Q5_K VNNI), or nil
}

const signature = "func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)"

// prologue starts a kernel. With r > 1 the q = len(out)/r blocks are rows
// i, q+i, 2q+i and 3q+i (i < q; 2 rows: i and q+i): stride = q*rb, with rb
// = len(xq)/256 * blockBytes the bytes of a row.
func prologue(name string, blockBytes, r int, avx2 bool) *kernel {
	TEXT(name, NOSPLIT, signature)
	blocks := []string{"", "one row", "2 rows, half the rows apart", "", "4 rows, a quarter of the rows apart"}[r]
	Doc(name+" is a K-quant matrix-vector kernel for blocks of "+blocks+".",
		"The caller guarantees the preconditions; see internal/kernels/kquant_amd64.go.")
	k := &kernel{r: r, blockBytes: blockBytes, avx2: avx2}
	k.rows = Load(Param("out").Len(), GP64())
	TESTQ(k.rows, k.rows)
	JZ(LabelRef("done"))
	k.wp = Load(Param("w").Base(), GP64())
	k.op = Load(Param("out").Base(), GP64())
	k.stride = Load(Param("xq").Len(), GP64())
	SHRQ(U8(8), k.stride)
	IMUL3Q(U32(blockBytes), k.stride, k.stride) // rb
	if r > 1 {
		Comment("q = rows/r: the block's rows are q rows apart.")
		SHRQ(U8(map[int]uint8{2: 1, 4: 2}[r]), k.rows)
		IMULQ(k.rows, k.stride)
		k.ostride = GP64()
		MOVQ(k.rows, k.ostride)
		SHLQ(U8(2), k.ostride)
		if r == 4 {
			k.stride3, k.ostride3 = GP64(), GP64()
			LEAQ(Mem{Base: k.stride, Index: k.stride, Scale: 2}, k.stride3)
			LEAQ(Mem{Base: k.ostride, Index: k.ostride, Scale: 2}, k.ostride3)
		}
	}
	k.xp, k.xsp, k.xsump, k.cnt = GP64(), GP64(), GP64(), GP64()
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
		return Mem{Base: k.wp, Index: k.stride, Scale: 1, Disp: off}
	case 2:
		return Mem{Base: k.wp, Index: k.stride, Scale: 2, Disp: off}
	}
	return Mem{Base: k.wp, Index: k.stride3, Scale: 1, Disp: off}
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
	if k.macc != nil {
		zero(k.macc)
	}
	Load(Param("xq").Len(), k.cnt)
	SHRQ(U8(8), k.cnt)
	Label("superblock")
}

// prefetchDist is how far ahead (bytes) each row's stream is prefetched,
// 0 for none: PREFETCHT0 of every cache line of the super-block that far
// beyond the current one, in each row of the block (a block's rows walk
// their own parts of w, rows i, i+1, ... of a quarter; past a part's end
// the prefetches would fetch the next part's start, past w's end nothing).
//
// None: with the rows far apart the hardware prefetchers follow the 4
// streams, and the prefetches only cost. Passes over the same 600 MB
// interleaved in one process (1 thread, medians of 31 in a quiet window),
// no prefetch / 4 KiB ahead: VNNI Q4_K 27.9 / 28.1 GB/s, Q5_K 26.5 / 24.7,
// Q6_K 30.0 / 26.1; AVX2 Q4_K 14.5 / 14.7, Q5_K 15.3 / 15.5, Q6_K 14.6 /
// 14.7. None / 12 KiB ahead (as the Q8_0 kernels), another quiet window:
// Q4_K 28.5 / 29.6, Q6_K 29.8 / 26.9. 2 KiB, 6 KiB, 24 KiB, PREFETCHT2, 1
// or 2 lines a super-block, or the prefetches spread among the rows' work
// did no better in noisier windows. (Q6_K, which reads the activation from memory for
// each row, loses most.) The adjacent rows' kernels prefetched the block of
// 4 rows after the next one, contiguous, for the hardware prefetchers
// stalled at each jump to the next 4 rows.
var prefetchDist = 0

// prefetch prefetches each row's stream prefetchDist ahead.
func (k *kernel) prefetch() {
	if prefetchDist <= 0 {
		return
	}
	for r := range k.r {
		for off := 0; off < k.blockBytes; off += 64 {
			PREFETCHT0(k.row(r, prefetchDist+off))
		}
	}
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
// row 0 to the start of row 1, the next block's row 0.
//
// Each row's lanes are reduced by the same tree whatever r: halves (zmm to
// ymm, ymm to xmm), then VHADDPS twice, [a0+a1, a2+a3] and their sum (for
// one row, the row against itself). So a row's value does not depend on the
// rows it is computed with, nor on the kernel (x4, x2 or x1): batched
// decoding (model/decode.go) computes rows in blocks and must get the
// values of the whole matrix. Row i's mins, lanes 4i..4i+3 of macc, are
// added to its 4 lanes before the VHADDPS.
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
		if k.macc != nil {
			m := k.macc.AsX()
			if i > 0 {
				m = XMM()
				VEXTRACTF32X4(U8(i), k.macc, m)
			}
			VADDPS(m, x, x)
		}
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
	VMOVSS(res, Mem{Base: k.op})
	for r := 1; r < k.r; r++ {
		o := Mem{Base: k.op, Index: k.ostride, Scale: uint8(r)}
		if r == 3 {
			o = Mem{Base: k.op, Index: k.ostride3, Scale: 1}
		}
		VEXTRACTPS(U8(r), res, o)
	}
	ADDQ(U8(4), k.op)
	DECQ(k.rows)
	JNZ(LabelRef("block"))
	Label("done")
	VZEROUPPER()
	RET()
}

// sharedSlot addresses 64-byte slot i of the stack space.
func (k *kernel) sharedSlot(i int) Mem { return k.shared.Offset(64 * i) }

// superSums packs the four accumulators' dwords to words, multiplies them
// by the word scales sc0 (a0, a1) and sc1 (a2, a3), sums them in one
// vector and adds it times dxs, d times the super-block's activation
// scale, into acc.
func superSums(a [4]VecVirtual, sc0, sc1, dxs, acc Op) {
	p0, p1 := ZMM(), ZMM()
	VPACKSSDW(a[1], a[0], p0)
	VPACKSSDW(a[3], a[2], p1)
	VPMADDWD(sc0, p0, p0)
	vpdpwssd(sc1, p1, p0)
	VCVTDQ2PS(p0, p0)
	VFMADD231PS(dxs, p0, acc)
}
