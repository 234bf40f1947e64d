//go:build amd64 && !purego

package kernels

import "math"

// Resident Q4_K panels (residentk.go) on amd64: the AVX-512 VNNI kernels
// of ../asm/gguf/residentk.go.

// kResident is what the drivers of resident K-quant panels need of a
// type: its kernels (panel kernels for up to maxV vectors at a time), how
// it lays out aux, the vectors' scales and sums (auxDwords a vector and
// super-block), and its Go kernels, for CPUs without AVX-512 VNNI.
type kResident struct {
	blockBytes, auxDwords, maxV int
	aux                         func(aux []uint32, xq []int8, xs []float32, xsum []int32, batch, nsb int)
	vec, vecSeq                 func(out []float32, p []byte, xq []int8, aux []uint32, pf int)
	panel                       [9]func(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)
	goVec                       func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32)
	goMat                       func(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
}

var kResQ4_K = &kResident{
	blockBytes: kResBlockBytes, auxDwords: 16, maxV: 8,
	aux: func(aux []uint32, _ []int8, xs []float32, xsum []int32, batch, nsb int) {
		kAux(aux, xs, xsum, batch, nsb)
	},
	vec: matVecPanelQ4_KVNNI, vecSeq: matVecPanelQ4_KSeqVNNI,
	panel: [9]func(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int){
		1: matMatPanelK1VNNI, 2: matMatPanelK2VNNI, 4: matMatPanelK4VNNI, 8: matMatPanelK8VNNI,
	},
	goVec: matVecResidentQ4_KGo, goMat: matMatResidentQ4_KGo,
}

var kResQ5_K = &kResident{
	blockBytes: q5ResBlockBytes, auxDwords: 16, maxV: 8,
	aux: kResQ4_K.aux,
	vec: matVecPanelQ5_KVNNI, vecSeq: matVecPanelQ5_KSeqVNNI,
	panel: [9]func(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int){
		1: matMatPanelQ5_1VNNI, 2: matMatPanelQ5_2VNNI, 4: matMatPanelQ5_4VNNI, 8: matMatPanelQ5_8VNNI,
	},
	goVec: matVecResidentQ5_KGo, goMat: matMatResidentQ5_KGo,
}

func matVecResidentQ4_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	kResQ4_K.matVec(out, p, xq, xs, xsum)
}

func matMatResidentQ4_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	kResQ4_K.matMat(out, p, rows, xq, xs, xsum, batch)
}

func matVecResidentQ5_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	kResQ5_K.matVec(out, p, xq, xs, xsum)
}

func matMatResidentQ5_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	kResQ5_K.matMat(out, p, rows, xq, xs, xsum, batch)
}

// matVec runs the matrix-vector kernel, reading the panels in order or
// apart and prefetching as the per-CPU table says (tuning.go).
func (k *kResident) matVec(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	if !hasVNNI {
		k.goVec(out, p, xq, xs, xsum)
		return
	}
	nsb := len(xq) / qkK
	if len(out) == 0 || nsb == 0 {
		clear(out)
		return
	}
	sc := panelScratchPool.Get().(*panelScratch)
	defer panelScratchPool.Put(sc)
	aux := grow(&sc.kAux, k.auxDwords*nsb)
	k.aux(aux, xq, xs, xsum, 1, nsb)
	vec := inOrder(k.vec, k.vecSeq, tuning.KPanels)
	vec(out, p[:len(out)/ResidentRows*nsb*k.blockBytes], xq, aux, tuning.KPanels.Prefetch)
}

// matMat runs each resident panel against the whole batch, maxV vectors
// at a time then fewer (forGroupsMax), prefetching as the per-CPU table
// says; a vector's values are matVec's.
func (k *kResident) matMat(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	if !hasVNNI {
		k.goMat(out, p, rows, xq, xs, xsum, batch)
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
	aux := grow(&sc.kAux, k.auxDwords*batch*nsb)
	k.aux(aux, xq, xs, xsum, batch, nsb)
	pb := nsb * k.blockBytes // bytes a panel
	for r := 0; r < rows; r += ResidentRows {
		panel := p[r/ResidentRows*pb : (r/ResidentRows+1)*pb]
		forGroupsMax(batch, k.maxV, func(v0, V int) {
			k.panel[V](out[v0*rows+r:], rows, panel, xq[v0*n:(v0+V)*n], aux[k.auxDwords*v0*nsb:k.auxDwords*(v0+V)*nsb], n, tuning.BatchPrefetch)
		})
	}
}

// forGroupsMax is forGroups with groups of at most max (4 or 8) vectors.
func forGroupsMax(batch, max int, f func(v0, V int)) {
	v0 := 0
	for ; v0+max <= batch; v0 += max {
		f(v0, max)
	}
	for V := max / 2; V > 0; V /= 2 {
		if v0+V <= batch {
			f(v0, V)
			v0 += V
		}
	}
}

// kAux lays out the batch's block sums and scales as the resident Q4_K
// panel kernels read them: for the group of V vectors from v0
// (forGroupsMax(batch, 8)), super-block sb's 16 dwords a vector at
// [16*(v0*nsb+sb*V+v):], the 8 block sums as 4 pairs of words (the low
// word the even block's) then, at 8, the scale's bits.
func kAux(aux []uint32, xs []float32, xsum []int32, batch, nsb int) {
	forGroupsMax(batch, 8, func(v0, V int) {
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

// matVecPanelQ4_KSeqVNNI is matVecPanelQ4_KVNNI reading the panels one
// after another.
//
//go:noescape
func matVecPanelQ4_KSeqVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matMatPanelK8VNNI computes one resident Q4_K panel (16 rows) times 8
// vectors n apart in x: out[v*m+r] = row r · vector v, each in the
// arithmetic of matVecPanelQ4_KVNNI, with the vectors' block sums and
// scales in aux as kAux lays them out for the group, prefetching each line
// of the panel pf bytes ahead (pf >= 0; prefetches never fault).
//
//go:noescape
func matMatPanelK8VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelK4VNNI is matMatPanelK8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelK4VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelK2VNNI is matMatPanelK8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelK2VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelK1VNNI is matMatPanelK8VNNI for 1 vector.
//
//go:noescape
func matMatPanelK1VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matVecPanelQ5_KVNNI is matVecPanelQ4_KVNNI for resident Q5_K panels
// (residentk.go; q the 5-bit values, len(p) >= len(out)*n/256*176).
//
//go:noescape
func matVecPanelQ5_KVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matVecPanelQ5_KSeqVNNI is matVecPanelQ5_KVNNI reading the panels one
// after another.
//
//go:noescape
func matVecPanelQ5_KSeqVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matMatPanelQ5_8VNNI is matMatPanelK8VNNI for a resident Q5_K panel.
//
//go:noescape
func matMatPanelQ5_8VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelQ5_4VNNI is matMatPanelQ5_8VNNI for 4 vectors.
//
//go:noescape
func matMatPanelQ5_4VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelQ5_2VNNI is matMatPanelQ5_8VNNI for 2 vectors.
//
//go:noescape
func matMatPanelQ5_2VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelQ5_1VNNI is matMatPanelQ5_8VNNI for 1 vector.
//
//go:noescape
func matMatPanelQ5_1VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)
