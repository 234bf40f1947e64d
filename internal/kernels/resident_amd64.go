//go:build amd64 && !purego

package kernels

// Resident panels (resident.go) on amd64: the AVX-512 VNNI kernels; the
// rows are only repacked where they run.
var ResidentKernels = hasVNNI

func matVecResidentQ8_0(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	if !hasVNNI {
		matVecResidentGo(out, p, xq, xs, xsum)
		return
	}
	nb := len(xq) / QBlock
	if len(out) == 0 || nb == 0 {
		clear(out)
		return
	}
	matVecPanelQ8_0VNNI(out, p[:len(out)*nb*q8_0Bytes], xq, xs[:nb], xsum[:nb])
}

// residentPanelKernels are the panel kernels for resident panels by width.
var residentPanelKernels = [...]func(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int){
	1: matMatPanelH1VNNI, 2: matMatPanelH2VNNI, 4: matMatPanelH4VNNI, 8: matMatPanelH8VNNI,
}

// matMatResidentQ8_0 runs each resident panel against the whole batch, 8
// vectors at a time then 4, 2, 1, as matMatPanels does without packing.
// A vector's values are those of matVecResidentQ8_0.
func matMatResidentQ8_0(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	if !hasVNNI {
		matMatResidentGo(out, p, rows, xq, xs, xsum, batch)
		return
	}
	n := len(xq) / batch
	nb := n / QBlock
	if nb == 0 {
		clear(out[:rows*batch])
		return
	}
	sc := panelScratchPool.Get().(*panelScratch)
	defer panelScratchPool.Put(sc)
	xsT, xcT := sc.transposeScales(xs, xsum, batch, nb, 128)
	rb := nb * q8_0Bytes
	for r := 0; r < rows; r += ResidentRows {
		panel := p[r*rb : (r+ResidentRows)*rb]
		forGroups(batch, func(v0, V int) {
			residentPanelKernels[V](out[v0*rows+r:], rows, panel, xq[v0*n:(v0+V)*n], xsT[v0*nb:(v0+V)*nb], xcT[v0*nb:(v0+V)*nb], n)
		})
	}
}

// matVecPanelQ8_0VNNI computes out[r] = row r of the resident panels p ·
// x, len(out)/16 panels of n/32 blocks (n = len(xq)), by the arithmetic
// of matMatPanelH1VNNI with xsT = xs and xcT = -128*xsum:
//
//	for r := range out {
//		var total float32
//		for b := 0; b < n/32; b++ {
//			sum := -128*xsum[b] + Σ_i u(r, 32*b+i) * int32(xq[32*b+i])
//			total += float32(sum) * d(r, b) * xs[b]
//		}
//		out[r] = total
//	}
//
// with u the unsigned bytes and d the scales of the panels. Preconditions,
// not checked: len(out)%16 == 0, len(out) > 0, n%32 == 0, n > 0,
// len(p) >= len(out)*n/32*34, len(xs), len(xsum) >= n/32.
//
//go:noescape
func matVecPanelQ8_0VNNI(out []float32, p []byte, xq []int8, xs []float32, xsum []int32)

// matMatPanelH8VNNI is matMatPanel8VNNI for a resident panel (float16 d,
// residentBlockBytes a block).
//
//go:noescape
func matMatPanelH8VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanelH4VNNI is matMatPanelH8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelH4VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanelH2VNNI is matMatPanelH8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelH2VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)

// matMatPanelH1VNNI is matMatPanelH8VNNI for 1 vector.
//
//go:noescape
func matMatPanelH1VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n int)
