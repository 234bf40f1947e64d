package kernels

// Reference loops and pure-Go twins of the GGUF kernels (blocks.go).

// Reference loops: the definition of each kernel's result.

func matVecF16Generic(out []float32, w []uint16, x []float32) {
	n := len(x)
	for r := range out {
		var s float32
		for j, xv := range x {
			s += F16ToF32(w[r*n+j]) * xv
		}
		out[r] = s
	}
}

func matVecBF16Generic(out []float32, w []uint16, x []float32) {
	n := len(x)
	for r := range out {
		var s float32
		for j, xv := range x {
			s += BF16ToF32(w[r*n+j]) * xv
		}
		out[r] = s
	}
}

// halfMatMat runs a MatVec for each vector of a batch (model.MatMat's
// contract), a block of rows (halfBlockBytes of weights, which stay in L2)
// at a time, so that the weights are read from memory once for the batch,
// not once a vector. A row's value is MatVec's whichever block it is in.
// The AVX2 F16 kernel, 16 vectors against 185 MB of 2048-wide rows, 1
// thread on the Zen 5 VM: 104 -> 330 vectors/s (3 runs each).
func halfMatMat(MatVec func([]float32, []uint16, []float32), out []float32, w []uint16, x []float32, batch int) {
	n, m := len(x)/batch, len(out)/batch
	block := max(4, halfBlockBytes/(2*max(n, 1))&^3)
	for r0 := 0; r0 < m; r0 += block {
		r1 := min(r0+block, m)
		for b := range batch {
			MatVec(out[b*m+r0:b*m+r1], w[r0*n:r1*n], x[b*n:(b+1)*n])
		}
	}
}

// halfBlockBytes bounds the weights of a block of rows in halfMatMat and
// matMatHalfAVX512.
const halfBlockBytes = 256 << 10

func matMatF16Generic(out []float32, w []uint16, x []float32, batch int) {
	halfMatMat(matVecF16Generic, out, w, x, batch)
}

func matMatBF16Generic(out []float32, w []uint16, x []float32, batch int) {
	halfMatMat(matVecBF16Generic, out, w, x, batch)
}

// matVecQ8_0Generic: out[r] = Σ_b d * xs[b] * (Σ_i qs[i]*xq[32b+i]).
func matVecQ8_0Generic(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	nb := len(xq) / QBlock
	for r := range out {
		var total float32
		for b := range nb {
			blk := w[(r*nb+b)*q8_0Bytes:][:q8_0Bytes]
			var s int32
			for i := range QBlock {
				s += int32(int8(blk[2+i])) * int32(xq[b*QBlock+i])
			}
			total += F16ToF32(le16(blk)) * xs[b] * float32(s)
		}
		out[r] = total
	}
}

// matVecQ4_0Generic: out[r] = Σ_b d * xs[b] * (Σ_i (q_i-8)*xq[32b+i]), with
// the offset applied to every value (the kernels use xsum instead).
func matVecQ4_0Generic(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	nb := len(xq) / QBlock
	for r := range out {
		var total float32
		for b := range nb {
			blk := w[(r*nb+b)*q4_0Bytes:][:q4_0Bytes]
			x := xq[b*QBlock:]
			var s int32
			for j := range QBlock / 2 {
				s += (int32(blk[2+j]&15) - 8) * int32(x[j])
				s += (int32(blk[2+j]>>4) - 8) * int32(x[j+16])
			}
			total += F16ToF32(le16(blk)) * xs[b] * float32(s)
		}
		out[r] = total
	}
}

// blockMatMat runs a MatVec for each vector of a batch (the matMatQ*
// contract).
func blockMatMat(MatVec func([]float32, []byte, []int8, []float32, []int32), out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := len(xq) / batch
	nb := n / QBlock
	for b := range batch {
		MatVec(out[b*rows:(b+1)*rows], w, xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
	}
}

func matMatQ8_0Generic(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	blockMatMat(matVecQ8_0Generic, out, w, rows, xq, xs, xsum, batch)
}

func matMatQ4_0Generic(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	blockMatMat(matVecQ4_0Generic, out, w, rows, xq, xs, xsum, batch)
}

// Pure-Go twins. Two rows at a time share each activation load, and four
// partial sums per row let the additions overlap (as dotGo); about 2x the
// reference loops.

func matVecF16Go(out []float32, w []uint16, x []float32) {
	matVecHalfGo(out, w, x, F16ToF32)
}

func matVecBF16Go(out []float32, w []uint16, x []float32) {
	matVecHalfGo(out, w, x, BF16ToF32)
}

// matVecHalfGo is the twin of both float types; conv inlines (the call is
// direct in each instantiation after inlining of the small wrappers).
func matVecHalfGo(out []float32, w []uint16, x []float32, conv func(uint16) float32) {
	n := len(x)
	for r := range out {
		row := w[r*n : (r+1)*n]
		var s0, s1, s2, s3 float32
		j := 0
		for ; j+4 <= n; j += 4 {
			ws, xs := row[j:j+4:j+4], x[j:j+4:j+4]
			s0 += conv(ws[0]) * xs[0]
			s1 += conv(ws[1]) * xs[1]
			s2 += conv(ws[2]) * xs[2]
			s3 += conv(ws[3]) * xs[3]
		}
		for ; j < n; j++ {
			s0 += conv(row[j]) * x[j]
		}
		out[r] = (s0 + s1) + (s2 + s3)
	}
}

func matMatF16Go(out []float32, w []uint16, x []float32, batch int) {
	halfMatMat(matVecF16Go, out, w, x, batch)
}

func matMatBF16Go(out []float32, w []uint16, x []float32, batch int) {
	halfMatMat(matVecBF16Go, out, w, x, batch)
}

func matVecQ8_0Go(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / QBlock
	rb := nb * q8_0Bytes
	xs = xs[:nb]
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		var total float32
		for b, xsb := range xs {
			blk := row[b*q8_0Bytes : (b+1)*q8_0Bytes]
			q := blk[2:34:34]
			x := xq[b*QBlock : (b+1)*QBlock : (b+1)*QBlock]
			var s0, s1 int32
			for i := 0; i < QBlock; i += 2 {
				s0 += int32(int8(q[i])) * int32(x[i])
				s1 += int32(int8(q[i+1])) * int32(x[i+1])
			}
			total += F16ToF32(le16(blk)) * xsb * float32(s0+s1)
		}
		out[r] = total
	}
}

func matVecQ4_0Go(out []float32, w []byte, xq []int8, xs []float32, xsum []int32) {
	nb := len(xq) / QBlock
	rb := nb * q4_0Bytes
	xs, xsum = xs[:nb], xsum[:nb]
	for r := range out {
		row := w[r*rb : (r+1)*rb]
		var total float32
		for b, xsb := range xs {
			blk := row[b*q4_0Bytes : (b+1)*q4_0Bytes]
			q := blk[2:18:18]
			x := xq[b*QBlock : (b+1)*QBlock : (b+1)*QBlock]
			var s0, s1 int32
			for j := range q {
				s0 += int32(q[j]&15) * int32(x[j])
				s1 += int32(q[j]>>4) * int32(x[j+16])
			}
			total += F16ToF32(le16(blk)) * xsb * float32(s0+s1-8*xsum[b])
		}
		out[r] = total
	}
}

func matMatQ8_0Go(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	blockMatMat(matVecQ8_0Go, out, w, rows, xq, xs, xsum, batch)
}

func matMatQ4_0Go(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	blockMatMat(matVecQ4_0Go, out, w, rows, xq, xs, xsum, batch)
}

// ggufImpl is one implementation of the GGUF kernels, for tests and
// benchmarks.
type ggufImpl struct {
	name                     string
	MatVecF16, MatVecBF16    func(out []float32, w []uint16, x []float32)
	MatMatF16, MatMatBF16    func(out []float32, w []uint16, x []float32, batch int)
	matVecQ8_0, matVecQ4_0   func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	matMatQ8_0, matMatQ4_0   func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
	dequantF16, dequantBF16  func(dst []float32, src []uint16)
	dequantQ8_0, dequantQ4_0 func(dst []float32, src []byte)
}

// ggufGo is the pure-Go implementation, available everywhere.
var ggufGo = ggufImpl{
	name:      "go",
	MatVecF16: matVecF16Go, MatVecBF16: matVecBF16Go,
	MatMatF16: matMatF16Go, MatMatBF16: matMatBF16Go,
	matVecQ8_0: matVecQ8_0Go, matVecQ4_0: matVecQ4_0Go,
	matMatQ8_0: matMatQ8_0Go, matMatQ4_0: matMatQ4_0Go,
	dequantF16: DequantRowF16, dequantBF16: DequantRowBF16,
	dequantQ8_0: dequantRowQ8_0, dequantQ4_0: dequantRowQ4_0,
}

// ggufImpls returns every implementation usable on this machine, fastest
// first (the first is the one the dispatching functions run).
func ggufImpls() []ggufImpl {
	return append(archGGUFImpls(), ggufGo)
}
