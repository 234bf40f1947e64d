//go:build arm64 && !purego

package kernels

// NEON SiluMul and ExpSubSum (exp_arm64.s): exp32 on four lanes,
// the last len%4 elements in Go.

func siluMulNEON(hb, hb2 []float32) {
	hb2 = hb2[:len(hb)]
	n4 := len(hb) &^ 3
	siluMul4NEON(hb[:n4], hb2)
	siluMulGo(hb[n4:], hb2[n4:])
}

func expSubSumNEON(x []float32, m float32) float32 {
	n4 := len(x) &^ 3
	return expSubSum4NEON(x[:n4], m) + expSubSumGo(x[n4:], m)
}

// siluMul4NEON computes
//
//	for i, v := range hb {
//		v *= 1 / (1 + exp32(-v))
//		hb[i] = v * hb2[i]
//	}
//
// for len(hb) a multiple of 4. len(hb2) >= len(hb).
//
//go:noescape
func siluMul4NEON(hb, hb2 []float32)

// expSubSum4NEON computes
//
//	var sum float32
//	for i, v := range x {
//		x[i] = exp32(v - m)
//		sum += x[i]
//	}
//	return sum
//
// (with a different summation order) for len(x) a multiple of 4.
//
//go:noescape
func expSubSum4NEON(x []float32, m float32) float32
