//go:build amd64 && !purego

package kernels

// Resident panels (resident.go) on amd64: the AVX-512 VNNI kernels; the
// rows are only repacked where they run.
var ResidentKernels = hasVNNI

// residentPanelKernels are the panel kernels for resident panels by width:
// Q8_0's (H: float16 d) and Q4_0's (N: nibbles).
var residentPanelKernels = map[*residentLayout][9]func(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int){
	residentQ8_0: {1: matMatPanelH1VNNI, 2: matMatPanelH2VNNI, 4: matMatPanelH4VNNI, 8: matMatPanelH8VNNI},
	residentQ4_0: {1: matMatPanelN1VNNI, 2: matMatPanelN2VNNI, 4: matMatPanelN4VNNI, 8: matMatPanelN8VNNI},
}

func matVecResidentQ8_0(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResident(residentQ8_0, inOrder(matVecPanelQ8_0VNNI, matVecPanelQ8_0SeqVNNI, tuning.Q8_0Panels), tuning.Q8_0Panels.Prefetch, out, p, xq, xs, xsum)
}

func matVecResidentQ4_0(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	matVecResident(residentQ4_0, inOrder(matVecPanelQ4_0VNNI, matVecPanelQ4_0SeqVNNI, tuning.Q4_0Panels), tuning.Q4_0Panels.Prefetch, out, p, xq, xs, xsum)
}

func matMatResidentQ8_0(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResident(residentQ8_0, out, p, rows, xq, xs, xsum, batch)
}

func matMatResidentQ4_0(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	matMatResident(residentQ4_0, out, p, rows, xq, xs, xsum, batch)
}

// matVecResident runs the matrix-vector kernel asm of layout l,
// prefetching pf bytes ahead (tuning.go), or Go's where the CPU lacks
// AVX-512 VNNI.
func matVecResident(l *residentLayout, asm residentKernel, pf int, out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	if !hasVNNI {
		matVecResidentGo(l, out, p, xq, xs, xsum)
		return
	}
	nb := len(xq) / QBlock
	if len(out) == 0 || nb == 0 {
		clear(out)
		return
	}
	asm(out, p[:len(out)/ResidentRows*nb*l.blockBytes], xq, xs[:nb], xsum[:nb], pf)
}

// inOrder returns apart, the kernel that reads 4 panels a quarter of the
// rows apart, or seq, the one that reads them in order, as the per-CPU
// table says (tuning.go).
func inOrder[K any](apart, seq K, p Panels) K {
	if p.InOrder {
		return seq
	}
	return apart
}

// residentKernel is the shape of the resident matrix-vector kernels.
type residentKernel func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)

// matMatResident runs each resident panel of layout l against the whole
// batch, 8 vectors at a time then 4, 2, 1, as matMatPanels does without
// packing, prefetching as the per-CPU table says. A vector's values are
// those of matVecResident.
func matMatResident(l *residentLayout, out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	if !hasVNNI {
		matMatResidentGo(l, out, p, rows, xq, xs, xsum, batch)
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
	xsT, xcT := sc.transposeScales(xs, xsum, batch, nb, l.c)
	pb := nb * l.blockBytes // bytes a panel
	kernels := residentPanelKernels[l]
	for r := 0; r < rows; r += ResidentRows {
		panel := p[r/ResidentRows*pb : (r/ResidentRows+1)*pb]
		forGroups(batch, func(v0, V int) {
			kernels[V](out[v0*rows+r:], rows, panel, xq[v0*n:(v0+V)*n], xsT[v0*nb:(v0+V)*nb], xcT[v0*nb:(v0+V)*nb], n, tuning.BatchPrefetch)
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
// with u the unsigned bytes and d the scales of the panels, prefetching
// each stream pf bytes ahead (pf >= 0; prefetches never fault).
// Preconditions, not checked: len(out)%16 == 0, len(out) > 0, n%32 == 0,
// n > 0, len(p) >= len(out)*n/32*34, len(xs), len(xsum) >= n/32.
//
//go:noescape
func matVecPanelQ8_0VNNI(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)

// matVecPanelQ4_0VNNI is matVecPanelQ8_0VNNI for resident Q4_0 panels
// (u the nibbles, -8*xsum, len(p) >= len(out)*n/32*18), the arithmetic of
// matMatPanelN1VNNI and of the packed panels' matMatPanel1VNNI.
//
//go:noescape
func matVecPanelQ4_0VNNI(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)

// matVecPanelQ8_0SeqVNNI is matVecPanelQ8_0VNNI reading the panels one
// after another.
//
//go:noescape
func matVecPanelQ8_0SeqVNNI(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)

// matVecPanelQ4_0SeqVNNI is matVecPanelQ4_0VNNI reading the panels one
// after another.
//
//go:noescape
func matVecPanelQ4_0SeqVNNI(out []float32, p []byte, xq []int8, xs []float32, xsum []int32, pf int)

// matMatPanelH8VNNI is matMatPanel8VNNI for a resident Q8_0 panel (float16
// d, 544 bytes a block), prefetching each line pf bytes ahead (pf >= 0).
//
//go:noescape
func matMatPanelH8VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelH4VNNI is matMatPanelH8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelH4VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelH2VNNI is matMatPanelH8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelH2VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelH1VNNI is matMatPanelH8VNNI for 1 vector.
//
//go:noescape
func matMatPanelH1VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelN8VNNI is matMatPanel8VNNI for a resident Q4_0 panel (4
// chunks of two steps' nibbles, float16 d, 288 bytes a block).
//
//go:noescape
func matMatPanelN8VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelN4VNNI is matMatPanelN8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelN4VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelN2VNNI is matMatPanelN8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelN2VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)

// matMatPanelN1VNNI is matMatPanelN8VNNI for 1 vector.
//
//go:noescape
func matMatPanelN1VNNI(out []float32, m int, p []byte, x []int8, xsT []float32, xcT []int32, n, pf int)
