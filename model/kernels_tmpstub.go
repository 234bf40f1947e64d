package model

// TEMPORARY reference kernels so the GGUF loader can be tested before the
// SIMD kernels land. Deleted at the merge.

func stubMatVec(deq func([]float32, []byte), bs, bb int) func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	return func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
		n := len(xq)
		rb := n / bs * bb
		row := make([]float32, n)
		for r := range out {
			deq(row, w[r*rb:(r+1)*rb])
			var s float32
			for j := range row {
				s += row[j] * float32(xq[j]) * xs[j/32]
			}
			out[r] = s
		}
	}
}
func stubMatMat(mv func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)) func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	return func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
		n := len(xq) / batch
		for b := range batch {
			mv(out[b*rows:(b+1)*rows], w, xq[b*n:(b+1)*n], xs[b*n/32:(b+1)*n/32], xsum[b*n/32:(b+1)*n/32])
		}
	}
}

func stubScaleMin(j int, q []byte) (int, int) {
	if j < 4 {
		return int(q[j] & 63), int(q[j+4] & 63)
	}
	return int(q[j+4]&0xF | (q[j-4]>>6)<<4), int(q[j+4]>>4 | (q[j]>>6)<<4)
}
func dequantRowQ4_K(dst []float32, src []byte) { stubK(dst, src, 144, false) }
func dequantRowQ5_K(dst []float32, src []byte) { stubK(dst, src, 176, true) }
func stubK(dst []float32, src []byte, bb int, five bool) {
	for i := 0; i*256 < len(dst); i++ {
		x := src[i*bb:]
		d := f16ToF32(uint16(x[0]) | uint16(x[1])<<8)
		mn := f16ToF32(uint16(x[2]) | uint16(x[3])<<8)
		sc := x[4:16]
		qh := x[16:48]
		q := x[16:]
		if five {
			q = x[48:]
		}
		y := dst[i*256:]
		u1, u2 := byte(1), byte(2)
		for j, is := 0, 0; j < 256; j += 64 {
			s1, m1 := stubScaleMin(is, sc)
			s2, m2 := stubScaleMin(is+1, sc)
			for l := range 32 {
				h1, h2 := 0, 0
				if five && qh[l]&u1 != 0 {
					h1 = 16
				}
				if five && qh[l]&u2 != 0 {
					h2 = 16
				}
				y[j+l] = d*float32(s1)*float32(int(q[l]&0xF)+h1) - mn*float32(m1)
				y[j+32+l] = d*float32(s2)*float32(int(q[l]>>4)+h2) - mn*float32(m2)
			}
			q = q[32:]
			is += 2
			u1 <<= 2
			u2 <<= 2
		}
	}
}
func dequantRowQ6_K(dst []float32, src []byte) {
	for i := 0; i*256 < len(dst); i++ {
		x := src[i*210:]
		ql, qh, sc := x[0:128], x[128:192], x[192:208]
		d := f16ToF32(uint16(x[208]) | uint16(x[209])<<8)
		y := dst[i*256:]
		for n := 0; n < 256; n += 128 {
			for l := range 32 {
				is := l / 16
				q1 := int(ql[l]&0xF|((qh[l]>>0)&3)<<4) - 32
				q2 := int(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
				q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
				q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
				y[n+l] = d * float32(int8(sc[is])) * float32(q1)
				y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
				y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
				y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
			}
			ql, qh, sc = ql[64:], qh[32:], sc[8:]
		}
	}
}

var (
	matVecQ4_K = stubMatVec(dequantRowQ4_K, 256, 144)
	matVecQ5_K = stubMatVec(dequantRowQ5_K, 256, 176)
	matVecQ6_K = stubMatVec(dequantRowQ6_K, 256, 210)
	matMatQ4_K = stubMatMat(matVecQ4_K)
	matMatQ5_K = stubMatMat(matVecQ5_K)
	matMatQ6_K = stubMatMat(matVecQ6_K)
)
