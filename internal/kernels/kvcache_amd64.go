//go:build amd64 && !purego

package kernels

// The KV cache's widening on amd64: AVX-512, else AVX2 (whose CPUs all
// have F16C), else Go (kvcache.go).

func dequantRowsF16Impl(dst []float32, src []uint16, rows, cols, stride int) {
	switch {
	case hasAVX512:
		dequantRowsF16AVX512(dst, src, rows, cols, stride)
	case hasAVX2FMA:
		dequantRowsF16AVX2Rows(dst, src, rows, cols, stride)
	default:
		dequantRowsF16Go(dst, src, rows, cols, stride)
	}
}

// dequantRowsF16AVX2Rows is dequantRowsF16Go: the assembly for each row's
// first cols&^7 values, Go for the rest.
func dequantRowsF16AVX2Rows(dst []float32, src []uint16, rows, cols, stride int) {
	dequantRowsF16AVX2(dst, src, rows, cols, stride)
	if c8 := cols &^ 7; c8 < cols {
		for r := range rows {
			DequantRowF16(dst[r*cols+c8:(r+1)*cols], src[r*stride+c8:])
		}
	}
}

func dequantRowsQ8_0Impl(dst []float32, src []byte, rows, nb, stride int) {
	switch {
	case hasAVX512:
		dequantRowsQ8_0AVX512(dst, src, rows, nb, stride)
	case hasAVX2FMA:
		dequantRowsQ8_0AVX2(dst, src, rows, nb, stride)
	default:
		dequantRowsQ8_0Go(dst, src, rows, nb, stride)
	}
}

// dequantRowsF16AVX512 computes dequantRowsF16Go (kvcache.go) with
// VCVTPH2PS, 16 values at a time and a masked tail; dequantRowsF16AVX2
// the same over the first cols&^7 values of each row. Preconditions, not
// checked: rows > 0, cols <= stride, the slices long enough.
//
//go:noescape
func dequantRowsF16AVX512(dst []float32, src []uint16, rows, cols, stride int)

//go:noescape
func dequantRowsF16AVX2(dst []float32, src []uint16, rows, cols, stride int)

// dequantRowsQ8_0AVX512 and dequantRowsQ8_0AVX2 compute dequantRowsQ8_0Go
// (kvcache.go): per block d (VCVTPH2PS) times each int8 (VPMOVSXBD,
// VCVTDQ2PS), one rounding as there. Preconditions, not checked: nb > 0,
// the slices long enough.
//
//go:noescape
func dequantRowsQ8_0AVX512(dst []float32, src []byte, rows, nb, stride int)

//go:noescape
func dequantRowsQ8_0AVX2(dst []float32, src []byte, rows, nb, stride int)

func archKVImpls() []kvImpl {
	var impls []kvImpl
	if hasAVX512 {
		impls = append(impls, kvImpl{"avx512", dequantRowsF16AVX512, dequantRowsQ8_0AVX512})
	}
	if hasAVX2FMA {
		impls = append(impls, kvImpl{"avx2", dequantRowsF16AVX2Rows, dequantRowsQ8_0AVX2})
	}
	return impls
}
