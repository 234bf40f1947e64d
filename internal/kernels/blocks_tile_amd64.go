//go:build amd64 && !purego

package kernels

import "sync"

// Go drivers and assembly declarations of the Q8_0 and Q4_0 kernels.

// blockRows reslices the weights and activation of a matrix-vector product
// to what the kernels read, which also checks the lengths.
func blockRows(out []float32, w []byte, xq []int8, xs []float32, bytes int) ([]byte, []float32) {
	nb := len(xq) / QBlock
	return w[:len(out)*nb*bytes], xs[:nb]
}

// The VNNI matrix-vector products of the panel types in the file's layout
// compute the panel kernels' arithmetic (../asm/gguf/sums.go), so that a
// row's value is the same in a batch as alone.

func matVecQ8_0VNNIDriver(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	w, xs = blockRows(out, w, xq, xs, q8_0Bytes)
	matVecQ8_0SumsVNNI(out, w, xq, xs)
}

func matVecQ4_0VNNIDriver(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	w, xs = blockRows(out, w, xq, xs, q4_0Bytes)
	matVecQ4_0SumsVNNI(out, w, xq, xs)
}

func matVecQ8_0AVX2Driver(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	w, xs = blockRows(out, w, xq, xs, q8_0Bytes)
	matVecQ8_0AVX2(out, w, xq, xs)
}

func matVecQ4_0AVX2Driver(out []float32, w []byte, xq []int8, xs []float32, _ []int32) {
	w, xs = blockRows(out, w, xq, xs, q4_0Bytes)
	matVecQ4_0AVX2(out, w, xq, xs)
}

func matMatQ8_0VNNI(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatPanels(out, w, rows, xq, xs, xsum, batch, q8_0Bytes, 128, packPanelQ8_0VNNI, matVecQ8_0VNNIDriver)
}

func matMatQ4_0VNNI(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatPanels(out, w, rows, xq, xs, xsum, batch, q4_0Bytes, 8, packPanelQ4_0VNNI, matVecQ4_0VNNIDriver)
}

// panelRows and panelBlockBytes are the shape of a packed panel (see
// ../asm/gguf/panel.go): 16 rows, and per block 8 steps of 64 bytes then
// the rows' 16 float32 scales.
const (
	panelRows       = 16
	panelBlockBytes = 8*64 + 64
)

// panelKernels are the panel kernels by width: panelKernels[V] takes V
// vectors.
var panelKernels = [...]func(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int){
	1: matMatPanel1VNNI, 2: matMatPanel2VNNI, 4: matMatPanel4VNNI, 8: matMatPanel8VNNI,
}

// panelScratch holds a call's packed panel and transposed activation
// scales; pooled, so that prompts allocate nothing per product once warm.
type panelScratch struct {
	p   []byte
	xsT []float32
	xcT []int32
	// kAux: resident Q4_K's block sums and scales (residentk_amd64.go).
	kAux []uint32
}

var panelScratchPool = sync.Pool{New: func() any { return new(panelScratch) }}

// matMatPanels packs each panel of 16 rows once (the 16 rows of a block
// side by side, as unsigned bytes: ../asm/gguf/panel.go) and runs it
// against the whole batch, 8 vectors at a time then 4, 2, 1, while it sits
// in L2 (Q4_0 at n = 5632: 99 KiB). The other rows%16 rows take the
// matrix-vector kernel. c is the offset of the unsigned weights (128 for
// Q8_0's w^0x80, 8 for Q4_0's nibbles): each vector's block sum starts at
// -c*xsum.
//
// Measured on the 2-core Zen 5 VM (BenchmarkMatMatGGUF, 2048x2048 by 64
// vectors, GOP/s, one sitting): Q4_0 from 165-178 with the 4x4 tile
// kernels this replaced to 443-496, Q8_0 from 166-196 to 415-483; on
// TinyLlama-shaped files, pp128 at 1 thread went from 65-74 tok/s to
// 157-165 (Q4_0) and from about 76 to 128-148 (Q8_0).
func matMatPanels(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch, bytes int, c int32,
	pack func(dst, w []byte, rowBytes, nb int),
	vec func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)) {
	n := len(xq) / batch
	nb := n / QBlock
	rb := nb * bytes
	m16 := rows &^ (panelRows - 1)
	if nb == 0 || batch == 1 {
		// One vector (a decode step of one sequence): packing the rows
		// into panels costs as much as the product, so the matrix-vector
		// kernel, which gives the panels' values (batch invariance), takes
		// them all. BenchmarkDecodeStepGGUF, 256x2048 from L2, AMD EPYC
		// Zen 4: Q8_0 30.0 against 15.5 us, Q4_0 26.2 against 17.9; from
		// two vectors on, the panels win (13.3 and 13.7 us a vector).
		m16 = 0
	}
	if m16 > 0 {
		sc := panelScratchPool.Get().(*panelScratch)
		defer panelScratchPool.Put(sc)
		p := grow(&sc.p, nb*panelBlockBytes)
		xsT, xcT := sc.transposeScales(xs, xsum, batch, nb, c)
		for r := 0; r < m16; r += panelRows {
			pack(p, w[r*rb:(r+panelRows)*rb], rb, nb)
			forGroups(batch, func(v0, V int) {
				panelKernels[V](out[v0*rows+r:], rows, p, xq[v0*n:(v0+V)*n], xsT[v0*nb:(v0+V)*nb], xcT[v0*nb:(v0+V)*nb], n)
			})
		}
	}
	if m16 < rows {
		for b := range batch {
			vec(out[b*rows+m16:(b+1)*rows], w[m16*rb:rows*rb], xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
		}
	}
}

// transposeScales returns the batch's scales and -c*xsum in the order the
// panel kernels read them: a group of V vectors from v0 (forGroups) has
// them at [v0*nb:], block b's V at [v0*nb+b*V:].
func (sc *panelScratch) transposeScales(xs []float32, xsum []int32, batch, nb int, c int32) ([]float32, []int32) {
	xsT, xcT := grow(&sc.xsT, batch*nb), grow(&sc.xcT, batch*nb)
	forGroups(batch, func(v0, V int) {
		for v := range V {
			for b := range nb {
				i := v0*nb + b*V + v
				xsT[i], xcT[i] = xs[(v0+v)*nb+b], -c*xsum[(v0+v)*nb+b]
			}
		}
	})
	return xsT, xcT
}

// forGroups cuts vectors [0, batch) into groups of 8, then the rest into
// one group each of 4, 2 and 1 as needed, and calls f on each.
func forGroups(batch int, f func(v0, V int)) {
	v0 := 0
	for ; v0+8 <= batch; v0 += 8 {
		f(v0, 8)
	}
	for V := 4; V > 0; V /= 2 {
		if v0+V <= batch {
			f(v0, V)
			v0 += V
		}
	}
}

// Assembly (blocks_amd64.s, generated by ../asm/gguf). With
// n = len(xq), nb = n/32 blocks a row and value(r, i) the i-th quant of row
// r (Q4_0: the nibble minus 8), the matrix-vector kernels compute
//
//	for r := range out {
//		var total float32
//		for b := 0; b < nb; b++ {
//			blk := w[(r*nb+b)*blockBytes:]
//			var sum int32
//			for i := 0; i < 32; i++ {
//				sum += value(r, 32*b+i) * int32(xq[32*b+i])
//			}
//			total = fma(float32(sum)*F16ToF32(le16(blk)), xs[b], total)
//		}
//		out[r] = total
//	}
//
// with the int32 sums exact and the float operations exactly these, in
// this order: the panel kernels' arithmetic (matMatPanel8VNNI), so that a
// row's value is the same alone as in a batch. They take rows 4 at a time,
// len(out)/4 rows apart (4 streams far apart read memory faster than 4
// adjacent rows; ../asm/gguf/blocks.go), then the last len(out)%4 one at a
// time. Preconditions, not checked: len(xq) % 32 == 0, len(xs) >= nb,
// len(w) >= len(out)*nb*blockBytes. xq must not hold -128 in the AVX2
// kernels (the quantizer never writes it), which sum in lanes (blocks.go's
// doc) and are used one vector at a time in batches.

// matVecQ8_0SumsVNNI is the AVX-512 VNNI kernel for Q8_0.
//
//go:noescape
func matVecQ8_0SumsVNNI(out []float32, w []byte, xq []int8, xs []float32)

// matVecQ4_0SumsVNNI is the AVX-512 VNNI (and VBMI) kernel for Q4_0.
//
//go:noescape
func matVecQ4_0SumsVNNI(out []float32, w []byte, xq []int8, xs []float32)

// matVecQ8_0AVX2 is the AVX2 kernel for Q8_0.
//
//go:noescape
func matVecQ8_0AVX2(out []float32, w []byte, xq []int8, xs []float32)

// matVecQ4_0AVX2 is the AVX2 kernel for Q4_0.
//
//go:noescape
func matVecQ4_0AVX2(out []float32, w []byte, xq []int8, xs []float32)

// packPanelQ8_0VNNI writes the panel of the 16 rows of nb Q8_0 blocks at
// w (rowBytes apart) into dst (nb*panelBlockBytes bytes): for block b and
// step j < 8, dst[b*576+64*j+4*r+i] = w's value 4j+i of row r, block b,
// XOR 0x80; dst[b*576+512+4*r:] = the float32 of row r's d. Preconditions,
// not checked: len(dst) >= nb*panelBlockBytes, len(w) >= 16*rowBytes,
// rowBytes >= nb*34, nb > 0.
//
//go:noescape
func packPanelQ8_0VNNI(dst []byte, w []byte, rowBytes, nb int)

// packPanelQ4_0VNNI is packPanelQ8_0VNNI for Q4_0: the bytes are the
// nibbles (0..15) in value order.
//
//go:noescape
func packPanelQ4_0VNNI(dst []byte, w []byte, rowBytes, nb int)

// matMatPanel8VNNI multiplies a packed panel p (n/32 blocks) by 8 vectors
// x (n int8 each, one after another):
//
//	for v := 0; v < 8; v++ {
//		for r := 0; r < 16; r++ {
//			var total float32
//			for b := 0; b < n/32; b++ {
//				sum := xcT[b*8+v] + Σ_i u(r, 32*b+i) * int32(x[v*n+32*b+i])
//				total += float32(sum) * d(r, b) * xsT[b*8+v]
//			}
//			out[v*m+r] = total
//		}
//	}
//
// with u the panel's unsigned bytes and d its scales, xcT the vectors'
// -c*xsum and xsT their scales, transposed (8 per block). The float terms
// are added in block order, each rounded as written. Preconditions, not
// checked: n%32 == 0, n > 0, len(p) >= n/32*panelBlockBytes, len(x) >=
// 8*n, len(xsT), len(xcT) >= n/4, len(out) >= 7*m+16.
//
//go:noescape
func matMatPanel8VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanel4VNNI is matMatPanel8VNNI for 4 vectors (4 per block in xsT,
// xcT).
//
//go:noescape
func matMatPanel4VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanel2VNNI is matMatPanel8VNNI for 2 vectors.
//
//go:noescape
func matMatPanel2VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanel1VNNI is matMatPanel8VNNI for 1 vector.
//
//go:noescape
func matMatPanel1VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)
