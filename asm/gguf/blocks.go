package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// blockType describes a block type of 32 values: Q8_0, or one of the
// nibble types (legacy.go has the others' layouts).
type blockType struct {
	name  string
	bytes int  // bytes per block
	q4    bool // nibbles
	c     byte // the offset of the unsigned form: 128 (w^0x80 or IQ4_NL's table), 16 (Q5_0), 8 (Q4_0) or 0
	qs    int  // offset of the quants in a block
	qh    int  // offset of the 32 fifth bits (Q5_0, Q5_1), 0 for none
	min   bool // an f16 minimum m after d: value = d*q + m (Q4_1, Q5_1)
	table bool // IQ4_NL: a nibble indexes iq4nlValues

	// Per-type data of the nibble types' VNNI kernels (legacyData):
	// VPERMB index of the quants of two blocks read from the first d,
	// VPERMW indices of the blocks' d and m under the 8-lane halves.
	perm, dIdx, mIdx Mem
	// dPair: the nibble types' VPERMT2W index of two rows' d (sums.go).
	dPair Mem
}

var (
	q8 = &blockType{name: "Q8_0", bytes: 34, c: 0x80, qs: 2}
	q4 = &blockType{name: "Q4_0", bytes: 18, q4: true, c: 8, qs: 2}
)

// unpacker builds, from the blocks at a row address, one zmm of unsigned
// bytes in x's order (see main.go): two blocks, or with single one block in
// the low 256 bits (the high bytes are then zero or 0x80, facing zeros of
// x).
type unpacker struct {
	bt              *blockType
	c               VecVirtual // the bytes c (Q8_0: also the XOR bias)
	perm, shift, lo VecVirtual // nibbles: VPERMB index, VPSRLVW counts, 0x0F
	dIdx, mIdx      VecVirtual // nibbles: VPERMW index of the two blocks' d, and m
	k2, k1          Register   // nibbles: load masks of two blocks, one block
	hi              Register   // the high 8 dword lanes
	sixteen, table  VecVirtual // Q5: the bytes 16; IQ4_NL: its values + 128 in each 128-bit lane
	kx2, kx1        Register   // minima: the blocks' first lanes (0 and 8), of two blocks or one
	zero            VecVirtual
}

func newUnpacker(bt *blockType) *unpacker {
	u := &unpacker{bt: bt}
	if bt.c != 0 {
		u.c = broadcastByte(bt.c, true)
	}
	u.zero, u.hi = ZMM(), K()
	VPXORD(u.zero, u.zero, u.zero)
	t := GP64()
	MOVL(U32(0xff00), t.As32())
	KMOVW(t.As32(), u.hi)
	if bt.q4 {
		u.perm, u.shift, u.dIdx = ZMM(), ZMM(), ZMM()
		VMOVDQU64(bt.perm, u.perm)
		VMOVDQU64(q4Shift, u.shift)
		VMOVDQU64(bt.dIdx, u.dIdx)
		u.lo = broadcastByte(0x0f, true)
		u.k2, u.k1 = K(), K()
		MOVQ(U64(1<<(2*bt.bytes)-1), t)
		KMOVQ(t, u.k2)
		MOVQ(U32(1<<bt.bytes-1), t)
		KMOVQ(t, u.k1)
	}
	if bt.min {
		u.mIdx = ZMM()
		VMOVDQU64(bt.mIdx, u.mIdx)
		u.kx2, u.kx1 = K(), K()
		MOVL(U32(0x0101), t.As32())
		KMOVW(t.As32(), u.kx2)
		MOVL(U32(1), t.As32())
		KMOVW(t.As32(), u.kx1)
	}
	if bt.qh != 0 {
		u.sixteen = broadcastByte(16, true)
	}
	if bt.table {
		u.table = ZMM()
		VBROADCASTI32X4(iq4nlTable, u.table)
	}
	return u
}

// unpack returns the unsigned bytes of the block(s) whose first d is at m,
// and (Q4_0) the bytes as loaded, d first.
//
// (Q8_0 in fewer instructions, tried: one zmm load at the first d, one
// VPERMI2B with the 64 bytes 4 later for the quants, one VPERMW for both
// d, instead of a ymm load, VINSERTI64X4 and two VPBROADCASTW. From L2 it
// was as fast or faster, but TinyLlama Q8_0 generation was 10-20% slower
// on the Zen 5 VM, at 1 and 2 threads in 4 alternated pairs.)
func (u *unpacker) unpack(m Mem, single bool) (w, raw VecVirtual) {
	w = ZMM()
	if !u.bt.q4 {
		zeroFrom(u.zero, w)
		VMOVDQU64(m.Offset(2), w.AsY())
		if !single {
			VINSERTI64X4(U8(1), m.Offset(2+u.bt.bytes), w, w)
		}
		VPXORD(u.c, w, w)
		return w, nil
	}
	k := u.k2
	if single {
		k = u.k1
	}
	raw = ZMM()
	VMOVDQU8_Z(m, k, raw)
	VPERMB(raw, u.perm, w)
	VPSRLVW(u.shift, w, w)
	VPANDD(u.lo, w, w)
	if u.bt.qh != 0 {
		// The fifth bits: bit i of a block's qh is value i's, so the two
		// blocks' 32 bits each are the byte mask of the 16s to add.
		kh := K()
		KMOVD(m.Offset(u.bt.qh), kh)
		if !single {
			k2 := K()
			KMOVD(m.Offset(u.bt.bytes+u.bt.qh), k2)
			KUNPCKDQ(kh, k2, kh)
		}
		VPADDB(u.sixteen, w, kh, w)
	}
	if u.bt.table {
		VPSHUFB(w, u.table, w)
	}
	return w, raw
}

// rowStep adds one step of the row whose blocks are at m (two blocks, or
// one with single) to the float lanes acc: x is the step's activation
// (with single a register whose high half is zero), cx its lanes'
// corrections (-c times the sum of each 4 bytes of x) and xsv its blocks'
// scales, 8 lanes each. Both matrix-vector kernels run it, so a row's
// lanes come out the same.
func (u *unpacker) rowStep(m Mem, x, cx, xsv, mx Op, acc VecVirtual, single bool) {
	w, raw := u.unpack(m, single)
	s := ZMM()
	if cx != nil {
		VMOVDQA64(cx, s)
	} else {
		zeroFrom(u.zero, s)
	}
	vpdpbusd(x, w, s)
	f := ZMM()
	VCVTDQ2PS(s, f)
	df := ZMM()
	if u.bt.q4 {
		d := ZMM()
		VPERMW(raw, u.dIdx, d) // words 0-7: d of the first block, 8-15: the second's
		VCVTPH2PS(d.AsY(), df)
	} else {
		d := YMM()
		VPBROADCASTW(m, d)
		if !single {
			VPBROADCASTW(m.Offset(u.bt.bytes), u.hi, d)
		}
		VCVTPH2PS(d, df)
	}
	VMULPS(xsv, df, df)
	VFMADD231PS(df, f, acc)
	if u.bt.min {
		// m * xs*xsum of each block, in the block's first lane.
		mw, mf := ZMM(), ZMM()
		VPERMW(raw, u.mIdx, mw)
		VCVTPH2PS(mw.AsY(), mf)
		VFMADD231PS(mx, mf, acc)
	}
}

// stepActivation loads the step of x at xp (the low half only with single)
// and computes its lanes' corrections (none when c is 0) and its blocks'
// scales (xsp); for the types with a minimum, mx holds xs*xsum of each
// block (xsump) in the block's first lane (0 and 8), zeros elsewhere.
func (u *unpacker) stepActivation(xp, xsp, xsump Register, single bool) (x, cx, xsv, mx VecVirtual) {
	x = ZMM()
	if single {
		zeroFrom(u.zero, x)
		VMOVDQU64(Mem{Base: xp}, x.AsY())
	} else {
		VMOVDQU64(Mem{Base: xp}, x)
	}
	if u.bt.c != 0 {
		cx = ZMM()
		zeroFrom(u.zero, cx)
		vpdpbusd(x, u.c, cx)
		VPSUBD(cx, u.zero, cx) // -c*x, summed per lane
	}
	xsv = ZMM()
	VBROADCASTSS(Mem{Base: xsp}, xsv)
	if !single {
		VBROADCASTSS(Mem{Base: xsp, Disp: 4}, u.hi, xsv)
	}
	if u.bt.min {
		k := u.kx2
		if single {
			k = u.kx1
		}
		mx = ZMM()
		VPEXPANDD_Z(Mem{Base: xsump}, k, mx)
		VCVTDQ2PS(mx, mx)
		VMULPS(xsv, mx, mx)
	}
	return x, cx, xsv, mx
}

// prefetchDist is how far ahead (bytes) the rows' streams are prefetched
// (PREFETCHT0 per row and step): far beyond the row, so in effect the
// weights 10-20 rows ahead. Measured on the 2-core Zen 5 VM, generation on
// TinyLlama-shaped files, 1 thread, ms per token (two runs each, one
// sitting, 4 rows at a time): no prefetch Q4_0 53-57 / Q8_0 68-75; 512: 52
// / -; 2048: 48-50 / 65; 4096: 36-38 / 63-75; 8192: 35 / 51-55; 12288:
// 30-32 / 50-51; 16384: 29-31 / 57-61; 24576: 30-31 / 51-53; 32768: 31 /
// 61. Not yet measured on Intel.
//
// Those figures predate the rows a quarter apart (below). With them, 2048
// is better for Q8_0: BenchmarkMatVecResidentDRAM's file layout, 5632x2048
// at 1 thread, GB/s over 4 alternated rounds, 2048 32.0-36.1 against 12288
// 26.7-31.4; mapped TinyLlama-shaped Q8_0 generation (the file's layout),
// tok/s, medians of 3 alternated runs, 12288 -> 2048: 27.9 -> 31.4 at 1
// thread, 42.6 -> 48.5 at 2; stories110M at 2 threads 462 -> 553. Q4_0
// stayed within the noise (1 thread mapped 41.9 -> 42.9, 2 threads read
// 68.0 -> 66.0).
var prefetchDist = 2048

// blockMatVecVNNI generates matVecQ8_0VNNI / matVecQ4_0VNNI: 4 rows at a
// time, rows/4 rows apart (then the last rows%4 one at a time), two blocks
// per step. Per step and row: the unpack, VPDPBUSD into a copy of the
// lanes' corrections, a conversion to float, the rows' scales d of both
// blocks times the activation's, and an FMA into the row's float lanes: no
// horizontal sum until the end of the row, by the same tree for 4 rows and
// for one (hsum4, hsum1t), so that a row's value does not depend on the
// rows it is computed with.
//
// Why rows apart: 4 rows share the step's activation work, but 4 streams
// 2 KiB apart (adjacent rows) are read from memory much slower than one or
// than 4 streams far apart, on the Zen 5 VM. Streaming 560 MB of Q8_0
// 5632x2048 matrices, 1 thread, GB/s (the same buffer, alternating runs):
// adjacent rows 16.5-19, one row at a time 19-23 (10 against 21-25 without
// software prefetch: the hardware prefetcher follows one stream but not
// four close ones), rows half the matrix apart two at a time 22-27, rows a
// quarter apart 4 at a time 31-34 -- where bench's probe reads 33-38. From
// L2 and L3 the order changes nothing. Generation on TinyLlama-shaped
// files, tok/s at 1 / 2 threads, medians of 3 alternating runs: Q8_0 18.3
// / 30.1 -> 27.4 / 40.6 (llama.cpp 21.6 / 27.0), Q4_0 28.7 / 47.0 -> 39.8
// / 60.4 (llama.cpp 28.5 / 46.0).
func blockMatVecVNNI(bt *blockType) {
	name := "matVec" + bt.name + "VNNI"
	sig := "func(out []float32, w []byte, xq []int8, xs []float32)"
	if bt.min {
		sig = "func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name + " computes out[r] = row r of w · x; see internal/kernels/blocks_amd64.go.")
	rows := Load(Param("out").Len(), GP64())
	op := Load(Param("out").Base(), GP64())
	wrow := Load(Param("w").Base(), GP64())
	nb := Load(Param("xq").Len(), GP64())
	SHRQ(U8(5), nb)
	rb := GP64()
	IMUL3Q(U32(bt.bytes), nb, rb)
	u := newUnpacker(bt)
	wp, xp, xsp, cnt := GP64(), GP64(), GP64(), GP64()
	var xsump GPVirtual
	if bt.min {
		xsump = GP64()
	}

	ra := newRowsApart(rows, rb)

	for _, R := range []int{4, 1} {
		l := func(s string) string { return fmt.Sprintf("r%d%s", R, s) }
		var stride, stride3 gpr = rb, rb
		if R == 4 {
			stride, stride3 = ra.qrb, ra.qrb3
		}
		ra.begin(R, rows, wrow, op, l("end"))
		Label(l("rows"))
		MOVQ(wrow, wp)
		Load(Param("xq").Base(), xp)
		Load(Param("xs").Base(), xsp)
		if bt.min {
			Load(Param("xsum").Base(), xsump)
		}
		var acc [4]VecVirtual
		for r := range R {
			acc[r] = ZMM()
			zeroFrom(u.zero, acc[r])
		}
		step := func(single bool) {
			x, cx, xsv, mx := u.stepActivation(xp, xsp, xsump, single)
			for r := range R {
				if !single && prefetchDist > 0 {
					PREFETCHT0(rowAt(wp, stride, stride3, r, prefetchDist))
				}
				u.rowStep(rowAt(wp, stride, stride3, r, 0), x, cx, xsv, mx, acc[r], single)
			}
		}
		if bt.min { // no register to spare for nb: read it again
			Load(Param("xq").Len(), cnt)
			SHRQ(U8(6), cnt)
		} else {
			MOVQ(nb, cnt)
			SHRQ(U8(1), cnt)
		}
		JZ(LabelRef(l("single")))
		Label(l("loop"))
		step(false)
		ADDQ(U8(64), xp)
		ADDQ(U8(8), xsp)
		if bt.min {
			ADDQ(U8(8), xsump)
		}
		ADDQ(U8(2*bt.bytes), wp)
		DECQ(cnt)
		JNZ(LabelRef(l("loop")))
		Label(l("single"))
		if bt.min {
			Load(Param("xq").Len(), cnt)
			TESTQ(U32(32), cnt)
		} else {
			TESTQ(U32(1), nb)
		}
		JZ(LabelRef(l("sum")))
		step(true)

		Label(l("sum"))
		if R == 4 {
			s := hsum4(acc)
			ra.store(s, op)
			ADDQ(rb, wrow)
			ADDQ(U8(4), op)
			DECQ(ra.q)
		} else {
			s := hsum1t(acc[0])
			VMOVSS(s, Mem{Base: op})
			ADDQ(rb, wrow)
			ADDQ(U8(4), op)
			DECQ(rows)
		}
		JNZ(LabelRef(l("rows")))
		Label(l("end"))
	}
	VZEROUPPER()
	RET()
}

// blockMatVecAVX2 generates matVec{T}AVX2 for Q8_0 and the nibble types:
// one row at a time, one block (one ymm) per step. VPMADDUBSW needs an
// unsigned operand: for Q8_0 and IQ4_NL (whose table's values are signed)
// it is |w| (128 for -128, which a crafted Q8_0 file may hold) with w's
// sign moved onto x (VPSIGNB; x is never -128: the quantizer writes
// -127..127); for Q4_0 and Q5_0 the quants are made signed (q-8, q-16) and
// the roles swap (|x| times the weights with x's sign), which is one
// operation less per row; Q4_1 and Q5_1's q are unsigned as they are. The
// int16 pair sums cannot saturate (2*127*128 < 32767). The fifth bits are
// spread to bytes by VPSHUFB, an OR with every other bit and a compare
// with all ones; the minima go into a scalar accumulator added to the
// row's sum at the end.
func blockMatVecAVX2(bt *blockType) {
	name := "matVec" + bt.name + "AVX2"
	sig, doc := "func(out []float32, w []byte, xq []int8, xs []float32)", "blocks_amd64.go"
	if bt.min {
		sig = "func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)"
	}
	if bt != q8 && bt != q4 {
		doc = "blocks_legacy_amd64.go"
	}
	TEXT(name, NOSPLIT, sig)
	Doc(name + " computes out[r] = row r of w · x; see internal/kernels/" + doc + ".")
	rows := Load(Param("out").Len(), GP64())
	TESTQ(rows, rows)
	JZ(LabelRef("done"))
	op := Load(Param("out").Base(), GP64())
	wp := Load(Param("w").Base(), GP64())
	ones := YMM()
	VPCMPEQW(ones, ones, ones)
	VPSRLW(U8(15), ones, ones)
	signed := bt.q4 && !bt.min && !bt.table // Q4_0, Q5_0: q - c
	var lo, off VecVirtual
	if bt.q4 {
		lo = broadcastByte(0x0f, false)
		if signed {
			off = broadcastByte(bt.c, false)
		}
	}
	var sixteen, shuf, mask, all, table VecVirtual
	if bt.qh != 0 {
		sixteen = off // Q5_0's c is 16
		if sixteen == nil {
			sixteen = broadcastByte(16, false)
		}
		shuf, mask, all = YMM(), YMM(), YMM()
		VMOVDQU(bitsShuf, shuf)
		VMOVDQU(bitsMask, mask)
		VPCMPEQB(all, all, all)
	}
	if bt.table {
		table = YMM()
		VBROADCASTI128(iq4nlSigned, table)
	}
	xp, xsp, cnt := GP64(), GP64(), GP64()
	var xsump GPVirtual
	if bt.min {
		xsump = GP64()
	}

	Label("row")
	Load(Param("xq").Base(), xp)
	Load(Param("xs").Base(), xsp)
	if bt.min {
		Load(Param("xsum").Base(), xsump)
	}
	Load(Param("xq").Len(), cnt)
	SHRQ(U8(5), cnt)
	acc := YMM()
	VXORPS(acc, acc, acc)
	var accMin VecVirtual
	if bt.min {
		accMin = XMM()
		VXORPS(accMin, accMin, accMin)
	}
	TESTQ(cnt, cnt)
	JZ(LabelRef("sum"))
	Label("block")
	x, xa := YMM(), YMM()
	VMOVDQU(Mem{Base: xp}, x)
	if signed {
		VPABSB(x, xa)
	}
	w := YMM()
	if bt.q4 {
		h := YMM()
		VBROADCASTI128(Mem{Base: wp, Disp: bt.qs}, w)
		VPSRLW(U8(4), w, h)
		VPBLENDD(U8(0xf0), h, w, w) // [qs | qs>>4]
		VPAND(lo, w, w)
		if bt.qh != 0 {
			b := YMM()
			VPBROADCASTD(Mem{Base: wp, Disp: bt.qh}, b)
			VPSHUFB(shuf, b, b)
			VPOR(mask, b, b)
			VPCMPEQB(all, b, b) // 0xff where value i's bit is set
			VPAND(sixteen, b, b)
			VPOR(b, w, w)
		}
		if signed {
			VPSUBB(off, w, w)
		}
	} else {
		VMOVDQU(Mem{Base: wp, Disp: 2}, w)
	}
	switch {
	case signed:
		VPSIGNB(x, w, w)
		VPMADDUBSW(w, xa, w)
	case bt.min:
		VPMADDUBSW(x, w, w)
	default:
		if bt.table {
			VPSHUFB(w, table, w)
		} else {
			Comment("|w| times x with w's sign: right for w = -128 too (|w| = 128 unsigned).")
		}
		VPSIGNB(w, x, xa)
		VPABSB(w, w)
		VPMADDUBSW(xa, w, w)
	}
	VPMADDWD(ones, w, w)
	f := YMM()
	VCVTDQ2PS(w, f)
	d := XMM()
	VPBROADCASTW(Mem{Base: wp}, d)
	df := YMM()
	VCVTPH2PS(d, df)
	xsv := YMM()
	VBROADCASTSS(Mem{Base: xsp}, xsv)
	VMULPS(xsv, df, df)
	VFMADD231PS(df, f, acc)
	if bt.min {
		m, sx := XMM(), XMM()
		VPBROADCASTW(Mem{Base: wp, Disp: 2}, m)
		VCVTPH2PS(m, m)
		VMULSS(xsv.AsX(), m, m)
		VMOVD(Mem{Base: xsump}, sx)
		VCVTDQ2PS(sx, sx)
		VFMADD231SS(m, sx, accMin)
		ADDQ(U8(4), xsump)
	}
	ADDQ(U8(32), xp)
	ADDQ(U8(4), xsp)
	ADDQ(U8(bt.bytes), wp)
	DECQ(cnt)
	JNZ(LabelRef("block"))

	Label("sum")
	s := hsum1(acc)
	if bt.min {
		VADDSS(accMin, s, s)
	}
	VMOVSS(s, Mem{Base: op})
	ADDQ(U8(4), op)
	DECQ(rows)
	JNZ(LabelRef("row"))
	Label("done")
	VZEROUPPER()
	RET()
}

// zeroFrom zeroes z by a move from zero, a register zeroed once at the
// function's start. avo's liveness analysis sees neither through zero
// idioms (VPXORD z, z, z reads z) nor through the zeroing of a zmm's upper
// half by a ymm write: registers cleared or written that way would be live
// from the function's entry, and the tile kernels then fail to allocate.
func zeroFrom(zero, z VecVirtual) { VMOVDQA64(zero, z) }
