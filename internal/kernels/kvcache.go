package kernels

import "math"

// Kernels of a KV cache kept in float16 or in Q8_0 blocks (model's
// kvcache.go): the conversions of a position's keys and values when they
// are written, and the widening of a block of positions' rows into float32
// when attention reads them (once for every query head that shares them).
//
// Forms as elsewhere: the dispatching functions here, assembly
// (kvcache_amd64.go: AVX-512, else AVX2 with F16C, else Go) and the Go
// twins, which are also the reference: every form gives the same values
// bit for bit (a conversion, or one product d*q).

// Q8_0Bytes is the size of a Q8_0 block of QBlock values: a float16 scale
// d and 32 int8 quants.
const Q8_0Bytes = q8_0Bytes

// QuantizeRowQ8_0 writes x (len(x) a multiple of 32) as Q8_0 blocks into
// dst (len(x)/32*Q8_0Bytes bytes), llama.cpp's quantize_row_q8_0: per
// block d = max|x|/127, stored as float16, and q = round(x/d) (halves away
// from zero), computed with the float32 d before its rounding to float16.
func QuantizeRowQ8_0(dst []byte, x []float32) {
	nb := len(x) / QBlock
	dst = dst[:nb*q8_0Bytes]
	for b := range nb {
		v := x[b*QBlock : (b+1)*QBlock]
		var amax float32
		for _, f := range v {
			amax = max(amax, float32(math.Abs(float64(f))))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		blk := dst[b*q8_0Bytes : (b+1)*q8_0Bytes]
		h := F32ToF16(d)
		blk[0], blk[1] = byte(h), byte(h>>8)
		for i, f := range v {
			blk[2+i] = byte(int8(RoundHalfAwayFromZero(f * id)))
		}
	}
}

// ConvertRowF16 sets dst[i] = F32ToF16(src[i]) for i < len(dst).
func ConvertRowF16(dst []uint16, src []float32) {
	src = src[:len(dst)]
	for i, f := range src {
		dst[i] = F32ToF16(f)
	}
}

// DequantRowsF16 widens rows of cols float16 values, stride apart in src,
// into dst, cols apart: dst[r*cols+i] = F16ToF32(src[r*stride+i]) for r <
// rows and i < cols.
func DequantRowsF16(dst []float32, src []uint16, rows, cols, stride int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if cols > stride || len(dst) < rows*cols || len(src) < (rows-1)*stride+cols {
		panic("kernels: DequantRowsF16: bad shape")
	}
	dequantRowsF16Impl(dst, src, rows, cols, stride)
}

// DequantRowsQ8_0 dequantizes rows of cols values (a multiple of 32) in
// Q8_0 blocks, stride bytes apart in src, into dst, cols apart: d*q.
func DequantRowsQ8_0(dst []float32, src []byte, rows, cols, stride int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	nb := cols / QBlock
	if cols%QBlock != 0 || nb*q8_0Bytes > stride || len(dst) < rows*cols || len(src) < (rows-1)*stride+nb*q8_0Bytes {
		panic("kernels: DequantRowsQ8_0: bad shape")
	}
	dequantRowsQ8_0Impl(dst, src, rows, nb, stride)
}

func dequantRowsF16Go(dst []float32, src []uint16, rows, cols, stride int) {
	for r := range rows {
		DequantRowF16(dst[r*cols:(r+1)*cols], src[r*stride:])
	}
}

func dequantRowsQ8_0Go(dst []float32, src []byte, rows, nb, stride int) {
	cols := nb * QBlock
	for r := range rows {
		dequantRowQ8_0(dst[r*cols:(r+1)*cols], src[r*stride:])
	}
}

// kvImpl is one implementation of the widening kernels, for tests.
type kvImpl struct {
	name string
	f16  func(dst []float32, src []uint16, rows, cols, stride int)
	q8   func(dst []float32, src []byte, rows, nb, stride int)
}
