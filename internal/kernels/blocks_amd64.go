//go:build amd64 && !purego

package kernels

//go:generate go run -C ../../asm ./gguf -out ../internal/kernels/blocks_amd64.s -pkg kernels

// Dispatch of the GGUF kernels (blocks.go) from cpu.go's flags: the
// float types run AVX-512, else AVX2 (whose CPUs all have F16C's
// VCVTPH2PS), else Go; the block types AVX-512 VNNI (Q4_0 also needs VBMI),
// else AVX2, else Go. The "avx512" test implementation needs all of them.
// Q8_0 weights repacked at load into resident panels have their own
// kernels (resident_amd64.go).

func matVecF16Impl(out []float32, w []uint16, x []float32) {
	switch {
	case hasAVX512:
		matVecF16AVX512(out, w, x)
	case hasAVX2FMA:
		matVecHalfAVX2(out, w, x, false)
	default:
		matVecF16Go(out, w, x)
	}
}

func matVecBF16Impl(out []float32, w []uint16, x []float32) {
	switch {
	case hasAVX512:
		matVecBF16AVX512(out, w, x)
	case hasAVX2FMA:
		matVecHalfAVX2(out, w, x, true)
	default:
		matVecBF16Go(out, w, x)
	}
}

func matMatF16Impl(out []float32, w []uint16, x []float32, batch int) {
	switch {
	case hasAVX512:
		matMatHalfAVX512(out, w, x, batch, false)
	case hasAVX2FMA:
		halfMatMat(matVecF16AVX2Driver, out, w, x, batch)
	default:
		matMatF16Go(out, w, x, batch)
	}
}

func matMatBF16Impl(out []float32, w []uint16, x []float32, batch int) {
	switch {
	case hasAVX512:
		matMatHalfAVX512(out, w, x, batch, true)
	case hasAVX2FMA:
		halfMatMat(matVecBF16AVX2Driver, out, w, x, batch)
	default:
		matMatBF16Go(out, w, x, batch)
	}
}

func matVecQ8_0Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	switch {
	case hasVNNI:
		matVecQ8_0VNNIDriver(out, w, xq, xs, xsum)
	case hasAVX2FMA:
		matVecQ8_0AVX2Driver(out, w, xq, xs, xsum)
	default:
		matVecQ8_0Go(out, w, xq, xs, xsum)
	}
}

func matVecQ4_0Impl(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	switch {
	case hasVNNI && hasVBMI:
		matVecQ4_0VNNIDriver(out, w, xq, xs, xsum)
	case hasAVX2FMA:
		matVecQ4_0AVX2Driver(out, w, xq, xs, xsum)
	default:
		matVecQ4_0Go(out, w, xq, xs, xsum)
	}
}

func matMatQ8_0Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	switch {
	case hasVNNI:
		matMatQ8_0VNNI(out, w, rows, xq, xs, xsum, batch)
	case hasAVX2FMA:
		blockMatMat(matVecQ8_0AVX2Driver, out, w, rows, xq, xs, xsum, batch)
	default:
		matMatQ8_0Go(out, w, rows, xq, xs, xsum, batch)
	}
}

func matMatQ4_0Impl(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	switch {
	case hasVNNI && hasVBMI:
		matMatQ4_0VNNI(out, w, rows, xq, xs, xsum, batch)
	case hasAVX2FMA:
		blockMatMat(matVecQ4_0AVX2Driver, out, w, rows, xq, xs, xsum, batch)
	default:
		matMatQ4_0Go(out, w, rows, xq, xs, xsum, batch)
	}
}

func archGGUFImpls() []ggufImpl {
	var impls []ggufImpl
	if hasVNNI && hasVBMI { // AVX-512 float kernels and VNNI block kernels
		impls = append(impls, ggufImpl{
			name:      "avx512",
			MatVecF16: matVecF16AVX512, MatVecBF16: matVecBF16AVX512,
			MatMatF16: func(out []float32, w []uint16, x []float32, batch int) {
				matMatHalfAVX512(out, w, x, batch, false)
			},
			MatMatBF16: func(out []float32, w []uint16, x []float32, batch int) {
				matMatHalfAVX512(out, w, x, batch, true)
			},
			matVecQ8_0: matVecQ8_0VNNIDriver, matVecQ4_0: matVecQ4_0VNNIDriver,
			matMatQ8_0: matMatQ8_0VNNI, matMatQ4_0: matMatQ4_0VNNI,
			dequantF16: DequantRowF16, dequantBF16: DequantRowBF16,
			dequantQ8_0: dequantRowQ8_0, dequantQ4_0: dequantRowQ4_0,
		})
	}
	if hasAVX2FMA {
		impls = append(impls, ggufImpl{
			name:      "avx2",
			MatVecF16: matVecF16AVX2Driver, MatVecBF16: matVecBF16AVX2Driver,
			MatMatF16: func(out []float32, w []uint16, x []float32, batch int) {
				halfMatMat(matVecF16AVX2Driver, out, w, x, batch)
			},
			MatMatBF16: func(out []float32, w []uint16, x []float32, batch int) {
				halfMatMat(matVecBF16AVX2Driver, out, w, x, batch)
			},
			matVecQ8_0: matVecQ8_0AVX2Driver, matVecQ4_0: matVecQ4_0AVX2Driver,
			matMatQ8_0: func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
				blockMatMat(matVecQ8_0AVX2Driver, out, w, rows, xq, xs, xsum, batch)
			},
			matMatQ4_0: func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
				blockMatMat(matVecQ4_0AVX2Driver, out, w, rows, xq, xs, xsum, batch)
			},
			dequantF16: DequantRowF16, dequantBF16: DequantRowBF16,
			dequantQ8_0: dequantRowQ8_0, dequantQ4_0: dequantRowQ4_0,
		})
	}
	return impls
}

// Float types.

func matVecF16AVX2Driver(out []float32, w []uint16, x []float32)  { matVecHalfAVX2(out, w, x, false) }
func matVecBF16AVX2Driver(out []float32, w []uint16, x []float32) { matVecHalfAVX2(out, w, x, true) }

// matVecHalfAVX2 runs the AVX2 kernel on the columns up to the last
// multiple of 8 and adds the others here.
func matVecHalfAVX2(out []float32, w []uint16, x []float32, bf16 bool) {
	n := len(x)
	n8 := n &^ 7
	w = w[:len(out)*n]
	if bf16 {
		matVecBF16AVX2(out, w, x[:n8], n)
	} else {
		matVecF16AVX2(out, w, x[:n8], n)
	}
	if n8 == n {
		return
	}
	conv := F16ToF32
	if bf16 {
		conv = BF16ToF32
	}
	for r := range out {
		for j := n8; j < n; j++ {
			out[r] += conv(w[r*n+j]) * x[j]
		}
	}
}

// matMatHalfAVX512 computes the vectors of the batch in tiles of 4 with
// the 4x4 kernel, and the other rows and vectors with the matrix-vector
// kernel. The rows go in blocks of halfBlockBytes of weights, which stay in
// L2 while each tile of 4 vectors (in L1) sweeps them: the kernel then
// reads 2 bytes of weights per 4 FMAs from L2. Sweeping each 4-row block
// over the whole batch instead read 4 bytes of x per 4 FMAs from L2 and
// ran at 52 GFLOP/s (F16, 2048x2048, 64 vectors), this order at 80-115
// (noisy shared machine: blocks of 64 KiB to 512 KiB measured alike).
func matMatHalfAVX512(out []float32, w []uint16, x []float32, batch int, bf16 bool) {
	n, m := len(x)/batch, len(out)/batch
	tiles := batch / 4
	done, m4 := 4*tiles, m&^3
	tile, vec := matMatF16x4x4AVX512, matVecF16AVX512
	if bf16 {
		tile, vec = matMatBF16x4x4AVX512, matVecBF16AVX512
	}
	block := max(4, halfBlockBytes/(2*max(n, 1))&^3)
	for r0 := 0; r0 < m4; r0 += block {
		r1 := min(r0+block, m4)
		for t := range tiles {
			xt := x[4*t*n : (4*t+4)*n]
			for r := r0; r < r1; r += 4 {
				tile(out[4*t*m+r:], w[r*n:(r+4)*n], xt, n, m, 1)
			}
		}
		// The vectors past the last tile, on the block while it is in
		// L2: each one alone over the whole matrix was another pass from
		// memory (the kernel's row values do not depend on the rows'
		// range).
		for b := done; b < batch; b++ {
			vec(out[b*m+r0:b*m+r1], w[r0*n:r1*n], x[b*n:(b+1)*n])
		}
	}
	for b := range batch {
		if m4 < m {
			vec(out[b*m+m4:(b+1)*m], w[m4*n:m*n], x[b*n:(b+1)*n])
		}
	}
}

// Assembly of the float types (blocks_amd64.s, generated by
// ../asm/gguf). conv is F16ToF32 or BF16ToF32.

// matVecF16AVX512 computes, for n = len(x) (any n, any rows),
//
//	for r := range out {
//		var s float32
//		for j := 0; j < n; j++ {
//			s += conv(w[r*n+j]) * x[j]
//		}
//		out[r] = s
//	}
//
// summing in 16 lanes (then a tree) instead of in order. len(w) >=
// len(out)*n, not checked.
//
//go:noescape
func matVecF16AVX512(out []float32, w []uint16, x []float32)

// matVecBF16AVX512 is matVecF16AVX512 for bfloat16.
//
//go:noescape
func matVecBF16AVX512(out []float32, w []uint16, x []float32)

// matVecF16AVX2 is matVecF16AVX512 over the first len(x) columns (a
// multiple of 8) of rows n halves apart:
//
//	for r := range out {
//		for j := 0; j < len(x); j++ {
//			out[r] += conv(w[r*n+j]) * x[j]    // out[r] starts at 0
//		}
//	}
//
//go:noescape
func matVecF16AVX2(out []float32, w []uint16, x []float32, n int)

// matVecBF16AVX2 is matVecF16AVX2 for bfloat16.
//
//go:noescape
func matVecBF16AVX2(out []float32, w []uint16, x []float32, n int)

// matMatF16x4x4AVX512 computes tiles of 4 rows by 4 vectors:
//
//	for v := 0; v < 4*tiles; v++ {
//		for r := 0; r < 4; r++ {
//			var s float32
//			for j := 0; j < n; j++ {
//				s += conv(w[r*n+j]) * x[v*n+j]
//			}
//			out[v*m+r] = s
//		}
//	}
//
// Preconditions, not checked: tiles >= 0, len(w) >= 4n, len(x) >=
// 4*tiles*n, len(out) >= (4*tiles-1)*m+4 when tiles > 0.
//
//go:noescape
func matMatF16x4x4AVX512(out []float32, w []uint16, x []float32, n, m, tiles int)

// matMatBF16x4x4AVX512 is matMatF16x4x4AVX512 for bfloat16.
//
//go:noescape
func matMatBF16x4x4AVX512(out []float32, w []uint16, x []float32, n, m, tiles int)
