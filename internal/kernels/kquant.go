package kernels

// K-quant kernels: GGUF's Q4_K, Q5_K and Q6_K weights (llama.cpp's
// k-quants), in super-blocks of qkK = 256 values, times an activation
// quantized in blocks of QBlock = 32 (see qblock.go for the shared shape)
// whose scales are equal within each super-block (QuantizeSuperBlocks;
// only the VNNI matrix-vector kernels depend on it).
//
// Block layouts (llama.cpp's ggml-common.h; all little-endian, blocks follow
// each other without padding, so they are not aligned):
//
//	Q4_K, 144 bytes: f16 d, f16 dmin, scales[12], qs[128]
//	Q5_K, 176 bytes: f16 d, f16 dmin, scales[12], qh[32], qs[128]
//	Q6_K, 210 bytes: ql[128], qh[64], int8 scales[16], f16 d
//
// Q4_K and Q5_K have eight sub-blocks of 32 values, each with a 6-bit scale
// sc and a 6-bit min m (packed in scales[12], see kScales): value
// y = d*sc*q - dmin*m, q in 0..15 (Q4_K) or 0..31 (Q5_K). Each 64-value chunk
// k of a super-block is 32 bytes of qs: their low nibbles are sub-block 2k,
// their high nibbles sub-block 2k+1; Q5_K's fifth bit of value l of
// sub-block j is bit j of qh[l].
//
// Q6_K has sixteen sub-blocks of 16 values with signed 8-bit scales:
// y = d*sc*(q-32), q in 0..63: per 128-value half h, 64 bytes of ql hold the
// low 4 bits (value l<64 in the low nibble of ql[l], value 64+l in its high
// nibble) and 32 bytes of qh the top 2 bits (bits 2i..2i+1 of qh[l] belong
// to value 32i+l).
//
// The products sum q*xq in int32 per sub-block (exact) and take the offsets
// out through the activation's block sums: for Q4_K and Q5_K
//
//	out[r] = Σ_b xs[b] * (d*sc_b*Σ q*xq - dmin*m_b*xsum[b])
//
// over the 32-blocks b of row r, and for Q6_K, whose two 16-value sub-blocks
// of a 32-block have their own scales, Σ (q-32)*xq = Σ q*xq - 32*Σ xq over
// each 16. The float parts may be combined in any order, so implementations
// differ by a few roundings; the tests bound them by
// |got-want| <= k*eps32*Σ|terms| against a dequantize-then-dot reference.
//
// Forms, as for the other kernels: the dispatching functions (matVecQ4_K
// etc., kquant_amd64.go: AVX-512 VNNI, else AVX2, else Go;
// kquant_generic.go elsewhere), the pure-Go twins here (matVecQ4_KGo
// etc.), and the plain reference loops in kquant_test.go. With VNNI
// the batched products use tile kernels, one row by 4 vectors
// (kquant_tile_amd64.go).

const (
	qkK      = 256 // values in a K-quant super-block
	q4KBytes = 144
	q5KBytes = 176
	q6KBytes = 210
)

// kScales unpacks the eight 6-bit scales and eight 6-bit mins of a Q4_K or
// Q5_K super-block from its 12 bytes (llama.cpp's get_scale_min_k4): the
// first four of each are the low 6 bits of bytes 0-3 (scales) and 4-7
// (mins); the last four take their low 4 bits from bytes 8-11 (scales in the
// low nibbles, mins in the high) and their top 2 bits from the top 2 bits of
// bytes 0-3 (scales) and 4-7 (mins).
func kScales(s []byte) (sc, m [8]uint8) {
	s = s[:12]
	for j := range 4 {
		sc[j] = s[j] & 63
		m[j] = s[j+4] & 63
		sc[j+4] = s[j+8]&0xf | s[j]>>6<<4
		m[j+4] = s[j+8]>>4 | s[j+4]>>6<<4
	}
	return sc, m
}

// kqHalf reads the f16 at b[0:2] as a float32.
func kqHalf(b []byte) float32 { return F16ToF32(uint16(b[0]) | uint16(b[1])<<8) }

// kRowBytes returns the bytes of a row of n values (n a multiple of qkK) in
// super-blocks of blockBytes, panicking if the shapes do not fit: n not a
// multiple of qkK, or w, xs, xsum too short for rows rows.
func kRowBytes(name string, blockBytes, rows, n int, w []byte, xs []float32, xsum []int32) int {
	if n%qkK != 0 {
		panic("kernels: " + name + ": len(xq) is not a multiple of 256")
	}
	rb := n / qkK * blockBytes
	if len(w) < rows*rb || len(xs) < n/QBlock || len(xsum) < n/QBlock {
		panic("kernels: " + name + ": w, xs or xsum too short")
	}
	return rb
}

// kBatch checks a batched product's shapes and returns n, the values of one
// vector.
func kBatch(name string, out []float32, rows int, xq []int8, xs []float32, xsum []int32, batch int) int {
	if batch <= 0 || rows < 0 || len(xq)%batch != 0 || len(out) < batch*rows {
		panic("kernels: " + name + ": bad batch shape")
	}
	n := len(xq) / batch
	if len(xs) < batch*n/QBlock || len(xsum) < batch*n/QBlock {
		panic("kernels: " + name + ": xs or xsum too short")
	}
	return n
}

// kqDequantBlocks calls block on each super-block of src covering dst and
// copies the values; a last partial super-block goes through a buffer.
func kqDequantBlocks(dst []float32, src []byte, blockBytes int, block func(*[qkK]float32, []byte)) {
	nb := len(dst) / qkK
	for i := range nb {
		block((*[qkK]float32)(dst[i*qkK:]), src[i*blockBytes:(i+1)*blockBytes])
	}
	if rest := dst[nb*qkK:]; len(rest) > 0 {
		var tmp [qkK]float32
		block(&tmp, src[nb*blockBytes:(nb+1)*blockBytes])
		copy(rest, tmp[:])
	}
}

// dequantRowQ4_K sets dst to the first len(dst) values of the Q4_K
// super-blocks in src.
func dequantRowQ4_K(dst []float32, src []byte) { kqDequantBlocks(dst, src, q4KBytes, dequantQ4_K) }

// dequantRowQ5_K sets dst to the first len(dst) values of the Q5_K
// super-blocks in src.
func dequantRowQ5_K(dst []float32, src []byte) { kqDequantBlocks(dst, src, q5KBytes, dequantQ5_K) }

// dequantRowQ6_K sets dst to the first len(dst) values of the Q6_K
// super-blocks in src.
func dequantRowQ6_K(dst []float32, src []byte) { kqDequantBlocks(dst, src, q6KBytes, dequantQ6_K) }

// dequantQ4_K and dequantQ5_K compute llama.cpp's dequantize_row_q4_K/q5_K
// values bit for bit: y = d1*q - m1 with d1 = d*sc and m1 = dmin*m rounded
// to float32 (the conversions keep Go from fusing the multiply and subtract).
func dequantQ4_K(y *[qkK]float32, b []byte) {
	b = b[:q4KBytes]
	d, dmin := kqHalf(b[0:]), kqHalf(b[2:])
	sc, m := kScales(b[4:16])
	qs := b[16:144]
	for k := range 4 {
		q := qs[32*k : 32*k+32]
		d1, m1 := d*float32(sc[2*k]), dmin*float32(m[2*k])
		d2, m2 := d*float32(sc[2*k+1]), dmin*float32(m[2*k+1])
		lo, hi := y[64*k:64*k+32], y[64*k+32:64*k+64]
		for l, v := range q {
			lo[l] = float32(d1*float32(v&0xf)) - m1
			hi[l] = float32(d2*float32(v>>4)) - m2
		}
	}
}

func dequantQ5_K(y *[qkK]float32, b []byte) {
	b = b[:q5KBytes]
	d, dmin := kqHalf(b[0:]), kqHalf(b[2:])
	sc, m := kScales(b[4:16])
	qh, qs := b[16:48], b[48:176]
	for k := range 4 {
		q := qs[32*k : 32*k+32]
		d1, m1 := d*float32(sc[2*k]), dmin*float32(m[2*k])
		d2, m2 := d*float32(sc[2*k+1]), dmin*float32(m[2*k+1])
		lo, hi := y[64*k:64*k+32], y[64*k+32:64*k+64]
		for l, v := range q {
			h := qh[l] >> (2 * k)
			lo[l] = float32(d1*float32(v&0xf|h&1<<4)) - m1
			hi[l] = float32(d2*float32(v>>4|h>>1&1<<4)) - m2
		}
	}
}

// dequantQ6_K computes llama.cpp's dequantize_row_q6_K values bit for bit:
// y = (d*sc)*(q-32) in float32.
func dequantQ6_K(y *[qkK]float32, b []byte) {
	b = b[:q6KBytes]
	d := kqHalf(b[208:])
	for h := range 2 {
		ql, qh := b[64*h:64*h+64], b[128+32*h:128+32*h+32]
		sc := b[192+8*h : 192+8*h+8]
		out := y[128*h : 128*h+128]
		for l := range 32 {
			is := l / 16
			q1 := int32(ql[l]&0xf|qh[l]&3<<4) - 32
			q2 := int32(ql[l+32]&0xf|qh[l]>>2&3<<4) - 32
			q3 := int32(ql[l]>>4|qh[l]>>4&3<<4) - 32
			q4 := int32(ql[l+32]>>4|qh[l]>>6&3<<4) - 32
			out[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
			out[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
			out[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
			out[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
		}
	}
}

// Pure-Go twins: the contract's formula, one 32-block at a time, with the
// int32 sums of each sub-block exact. Each row's float total adds the
// 32-blocks in order.

// matVecQ4_KGo is matVecQ4_K in pure Go.
func matVecQ4_KGo(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	n := len(xq)
	rb := kRowBytes("matVecQ4_K", q4KBytes, len(out), n, w, xs, xsum)
	for r := range out {
		out[r] = dotQ45K(w[r*rb:(r+1)*rb], q4KBytes, xq, xs, xsum)
	}
}

// matVecQ5_KGo is matVecQ5_K in pure Go.
func matVecQ5_KGo(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	n := len(xq)
	rb := kRowBytes("matVecQ5_K", q5KBytes, len(out), n, w, xs, xsum)
	for r := range out {
		out[r] = dotQ45K(w[r*rb:(r+1)*rb], q5KBytes, xq, xs, xsum)
	}
}

// dotQ45K returns the product of one Q4_K (blockBytes 144) or Q5_K (176)
// row with the activation.
func dotQ45K(row []byte, blockBytes int, xq []int8, xs []float32, xsum []int32) float32 {
	var total float32
	for i := range len(xq) / qkK {
		b := row[i*blockBytes : (i+1)*blockBytes]
		d, dmin := kqHalf(b[0:]), kqHalf(b[2:])
		sc, m := kScales(b[4:16])
		var qh []byte // nil for Q4_K
		qs := b[16:144]
		if blockBytes == q5KBytes {
			qh, qs = b[16:48], b[48:176]
		}
		x := xq[i*qkK : (i+1)*qkK]
		for k := range 4 {
			// Fixed-size arrays: no bounds checks in the loops.
			q := (*[32]byte)(qs[32*k:])
			xa, xb := (*[32]int8)(x[64*k:]), (*[32]int8)(x[64*k+32:])
			var sa, sb int32
			if qh == nil {
				for l, v := range q {
					sa += int32(v&0xf) * int32(xa[l])
					sb += int32(v>>4) * int32(xb[l])
				}
			} else {
				h := (*[32]byte)(qh)
				shift := uint(2 * k)
				for l, v := range q {
					hl := h[l] >> shift
					sa += int32(v&0xf|hl&1<<4) * int32(xa[l])
					sb += int32(v>>4|hl>>1&1<<4) * int32(xb[l])
				}
			}
			j, g := 2*k, i*8+2*k
			total += xs[g] * float32(d*float32(sc[j])*float32(sa)-dmin*float32(m[j])*float32(xsum[g]))
			total += xs[g+1] * float32(d*float32(sc[j+1])*float32(sb)-dmin*float32(m[j+1])*float32(xsum[g+1]))
		}
	}
	return total
}

// matVecQ6_KGo is matVecQ6_K in pure Go.
func matVecQ6_KGo(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	n := len(xq)
	rb := kRowBytes("matVecQ6_K", q6KBytes, len(out), n, w, xs, xsum)
	for r := range out {
		out[r] = dotQ6K(w[r*rb:(r+1)*rb], xq, xs)
	}
}

// dotQ6K returns the product of one Q6_K row with the activation: per
// 32-block, the int32 sum over its two 16-value sub-blocks of
// sc*(Σ q*xq - 32*Σ xq) (exact: at most 2*128*16*32*128 in magnitude),
// times d and xs.
func dotQ6K(row []byte, xq []int8, xs []float32) float32 {
	var total float32
	for i := range len(xq) / qkK {
		b := row[i*q6KBytes : (i+1)*q6KBytes]
		d := kqHalf(b[208:])
		x := xq[i*qkK : (i+1)*qkK]
		for h := range 2 {
			ql, qh := (*[64]byte)(b[64*h:]), (*[32]byte)(b[128+32*h:])
			sc := (*[8]byte)(b[192+8*h:])
			xh := (*[128]int8)(x[128*h:])
			// s[c][e]: quarter c (values 32c..32c+31 of the half: low or
			// high nibbles of ql[0:32] or ql[32:64], bits 2c, 2c+1 of qh),
			// sub-block e of 16.
			var s [4][2]int32
			for e := range 2 {
				for l := 16 * e; l < 16*e+16; l++ {
					lo, hi, hb := ql[l], ql[l+32], qh[l]
					s[0][e] += (int32(lo&0xf|hb&3<<4) - 32) * int32(xh[l])
					s[1][e] += (int32(hi&0xf|hb>>2&3<<4) - 32) * int32(xh[l+32])
					s[2][e] += (int32(lo>>4|hb>>4&3<<4) - 32) * int32(xh[l+64])
					s[3][e] += (int32(hi>>4|hb>>6<<4) - 32) * int32(xh[l+96])
				}
			}
			for c := range 4 {
				isum := int32(int8(sc[2*c]))*s[c][0] + int32(int8(sc[2*c+1]))*s[c][1]
				total += xs[i*8+h*4+c] * float32(d*float32(isum))
			}
		}
	}
	return total
}

// matMatKGo runs a pure-Go MatVec on each vector of a batch.
func matMatKGo(name string, MatVec func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32),
	out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := kBatch(name, out, rows, xq, xs, xsum, batch)
	nb := n / QBlock
	for b := range batch {
		MatVec(out[b*rows:(b+1)*rows], w, xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
	}
}

func matMatQ4_KGo(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatKGo("matMatQ4_K", matVecQ4_KGo, out, w, rows, xq, xs, xsum, batch)
}

func matMatQ5_KGo(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatKGo("matMatQ5_K", matVecQ5_KGo, out, w, rows, xq, xs, xsum, batch)
}

func matMatQ6_KGo(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatKGo("matMatQ6_K", matVecQ6_KGo, out, w, rows, xq, xs, xsum, batch)
}

// kqImpl is one implementation of a K-quant type's kernels, for tests and
// benchmarks.
type kqImpl struct {
	name   string
	MatVec func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	MatMat func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
}

// kqType is one K-quant type: its block size, reference dequantizer and
// implementations usable on this machine, fastest first (the first is what
// the dispatching functions run).
type kqType struct {
	name       string
	blockBytes int
	dequant    func(dst []float32, src []byte)
	impls      []kqImpl
}

func kqTypes() []kqType {
	arch := archKQImpls()
	return []kqType{
		{"Q4_K", q4KBytes, dequantRowQ4_K, append(arch[0], kqImpl{"go", matVecQ4_KGo, matMatQ4_KGo})},
		{"Q5_K", q5KBytes, dequantRowQ5_K, append(arch[1], kqImpl{"go", matVecQ5_KGo, matMatQ5_KGo})},
		{"Q6_K", q6KBytes, dequantRowQ6_K, append(arch[2], kqImpl{"go", matVecQ6_KGo, matMatQ6_KGo})},
	}
}
