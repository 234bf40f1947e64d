//go:build amd64 && !purego

package kernels

import "math"

// Resident Q4_K panels (residentk.go) on amd64: the AVX-512 VNNI kernels
// of ../asm/gguf/residentk.go.

// residentKPanelKernels are the panel kernels by width.
var residentKPanelKernels = [9]func(out []float32, m int, p []byte, x []int8, aux []uint32, n int){
	1: matMatPanelK1VNNI, 2: matMatPanelK2VNNI, 4: matMatPanelK4VNNI, 8: matMatPanelK8VNNI,
}

func matVecResidentQ4_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	if !hasVNNI {
		matVecResidentQ4_KGo(out, p, xq, xs, xsum)
		return
	}
	nsb := len(xq) / qkK
	if len(out) == 0 || nsb == 0 {
		clear(out)
		return
	}
	sc := panelScratchPool.Get().(*panelScratch)
	defer panelScratchPool.Put(sc)
	aux := grow(&sc.kAux, 16*nsb)
	kAux(aux, xs, xsum, 1, nsb)
	matVecPanelQ4_KVNNI(out, p[:len(out)/ResidentRows*nsb*kResBlockBytes], xq, aux, tuning.ResidentKPrefetch)
}

// matMatResidentQ4_K runs each resident panel against the whole batch, 8
// vectors at a time then 4, 2, 1 (forGroups); a vector's values are those
// of matVecResidentQ4_K.
func matMatResidentQ4_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	if !hasVNNI {
		matMatResidentQ4_KGo(out, p, rows, xq, xs, xsum, batch)
		return
	}
	n := len(xq) / batch
	nsb := n / qkK
	if nsb == 0 {
		clear(out[:rows*batch])
		return
	}
	sc := panelScratchPool.Get().(*panelScratch)
	defer panelScratchPool.Put(sc)
	aux := grow(&sc.kAux, 16*batch*nsb)
	kAux(aux, xs, xsum, batch, nsb)
	pb := nsb * kResBlockBytes // bytes a panel
	for r := 0; r < rows; r += ResidentRows {
		panel := p[r/ResidentRows*pb : (r/ResidentRows+1)*pb]
		forGroups(batch, func(v0, V int) {
			residentKPanelKernels[V](out[v0*rows+r:], rows, panel, xq[v0*n:(v0+V)*n], aux[16*v0*nsb:16*(v0+V)*nsb], n)
		})
	}
}

// kAux lays out the batch's block sums and scales as the resident Q4_K
// panel kernels read them: for the group of V vectors from v0
// (forGroups), super-block sb's 16 dwords a vector at
// [16*(v0*nsb+sb*V+v):], the 8 block sums as 4 pairs of words (the low
// word the even block's) then, at 8, the scale's bits.
func kAux(aux []uint32, xs []float32, xsum []int32, batch, nsb int) {
	forGroups(batch, func(v0, V int) {
		for sb := range nsb {
			for v := range V {
				a := aux[16*(v0*nsb+sb*V+v):][:16]
				b := (v0+v)*nsb*8 + 8*sb
				for i := range 4 { // |xsum| <= 32*128: words
					a[i] = uint32(uint16(xsum[b+2*i])) | uint32(uint16(xsum[b+2*i+1]))<<16
				}
				a[8] = math.Float32bits(xs[b])
			}
		}
	})
}

// matVecPanelQ4_KVNNI computes out[r] = row r of the resident Q4_K panels
// p · x, len(out)/16 panels of n/256 super-blocks (n = len(xq)), in the
// order of residentk.go:
//
//	for r := range out {
//		var total float32
//		for sb := 0; sb < n/256; sb++ {
//			sumi := Σ_j sc(r, sb, j) * Σ_l q(r, 256*sb+32*j+l) * xq[256*sb+32*j+l]
//			msum := Σ_j m(r, sb, j) * xsum(sb, j)
//			f := fma(float32(sumi), d(r, sb), -float32(msum)*dmin(r, sb))
//			total = fma(f, xs(sb), total)
//		}
//		out[r] = total
//	}
//
// with the block sums xsum and the scale xs in aux as kAux lays them out
// for one vector, prefetching each stream pf bytes ahead (pf >= 0).
// Preconditions, not checked: len(out)%16 == 0, len(out) > 0, n%256 == 0,
// n > 0, len(p) >= len(out)*n/256*144, len(aux) >= n/256*16.
//
//go:noescape
func matVecPanelQ4_KVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matMatPanelK8VNNI computes one resident Q4_K panel (16 rows) times 8
// vectors n apart in x: out[v*m+r] = row r · vector v, each in the
// arithmetic of matVecPanelQ4_KVNNI, with the vectors' block sums and
// scales in aux as kAux lays them out for the group.
//
//go:noescape
func matMatPanelK8VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n int)

// matMatPanelK4VNNI is matMatPanelK8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelK4VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n int)

// matMatPanelK2VNNI is matMatPanelK8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelK2VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n int)

// matMatPanelK1VNNI is matMatPanelK8VNNI for 1 vector.
//
//go:noescape
func matMatPanelK1VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n int)
