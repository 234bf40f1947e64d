//go:build amd64 && !purego

package kernels

import (
	"math"
	"unsafe"
)

// Resident Q6_K panels (residentq6.go) on amd64: the AVX-512 VNNI kernels
// of ../asm/gguf/residentq6.go, driven as Q4_K's (residentk_amd64.go). A
// panel takes at most 4 vectors at a time (each vector keeps 4 sub-blocks'
// sums in registers).
var kResQ6_K = &kResident{
	blockBytes: q6ResBlockBytes, auxDwords: 32, maxV: 4,
	aux: func(aux []uint32, xq []int8, xs []float32, xsum []int32, batch, nsb int) {
		q6Aux(aux, xq, xs, xsum, batch, nsb, 4)
	},
	vec: matVecPanelQ6_KVNNI, vecSeq: matVecPanelQ6_KSeqVNNI,
	panel: [9]func(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int){
		1: matMatPanelQ6_1VNNI, 2: matMatPanelQ6_2VNNI, 4: matMatPanelQ6_4VNNI,
	},
	goVec: matVecResidentQ6_KGo, goMat: matMatResidentQ6_KGo,
}

func matVecResidentQ6_K(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
	kResQ6_K.matVec(out, p, xq, xs, xsum)
}

func matMatResidentQ6_K(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	kResQ6_K.matMat(out, p, rows, xq, xs, xsum, batch)
}

// q6Aux lays out what the resident Q6_K kernels read of the batch's
// vectors besides their values: for the group of V vectors from v0
// (forGroupsMax with max), super-block sb's 32 dwords a vector at
// [32*(v0*nsb+sb*V+v):], -32 times the sums of its 16 sub-blocks' values,
// then the scale's bits. The second sub-block of each block of 32 sums to
// the block's sum minus the first's (in a TinyLlama-shaped Q4_K_M decode
// step of 8 sequences, summing both took 4% of the time).
func q6Aux(aux []uint32, xq []int8, xs []float32, xsum []int32, batch, nsb, max int) {
	n := nsb * qkK
	forGroupsMax(batch, max, func(v0, V int) {
		for sb := range nsb {
			for v := range V {
				a := aux[32*(v0*nsb+sb*V+v):][:32]
				x := xq[(v0+v)*n+qkK*sb:][:qkK]
				sums := xsum[(v0+v)*nsb*8+8*sb:][:8]
				for b := range 8 {
					s := sum16(x[32*b:])
					a[2*b], a[2*b+1] = uint32(-32*s), uint32(-32*(sums[b]-s))
				}
				a[16] = math.Float32bits(xs[(v0+v)*nsb*8+8*sb])
			}
		}
	})
}

// matVecPanelQ6_KVNNI computes out[r] = row r of the resident Q6_K panels
// p · x, len(out)/16 panels of n/256 super-blocks (n = len(xq)), in the
// order of residentq6.go:
//
//	for r := range out {
//		var total float32
//		for sb := 0; sb < n/256; sb++ {
//			sumi := Σ_j sc(r, sb, j) * (aux[32*sb+j] + Σ_l q(r, 256*sb+16*j+l) * xq[256*sb+16*j+l])
//			total = fma(float32(sumi)*d(r, sb), xs(sb), total)
//		}
//		out[r] = total
//	}
//
// with q the 6-bit values (0..63) and aux as q6Aux lays it out for one
// vector (xs(sb) the bits of aux[32*sb+16]), prefetching each stream pf
// bytes ahead (pf >= 0). Preconditions, not checked: len(out)%16 == 0,
// len(out) > 0, n%256 == 0, n > 0, len(p) >= len(out)*n/256*210,
// len(aux) >= n/256*32.
//
//go:noescape
func matVecPanelQ6_KVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matVecPanelQ6_KSeqVNNI is matVecPanelQ6_KVNNI reading the panels one
// after another.
//
//go:noescape
func matVecPanelQ6_KSeqVNNI(out []float32, p []byte, xq []int8, aux []uint32, pf int)

// matMatPanelQ6_4VNNI computes one resident Q6_K panel (16 rows) times 4
// vectors n apart in x: out[v*m+r] = row r · vector v, each in the
// arithmetic of matVecPanelQ6_KVNNI, with aux as q6Aux lays it out for
// the group, prefetching each line of the panel pf bytes ahead (pf >= 0).
//
//go:noescape
func matMatPanelQ6_4VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelQ6_2VNNI is matMatPanelQ6_4VNNI for 2 vectors.
//
//go:noescape
func matMatPanelQ6_2VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// matMatPanelQ6_1VNNI is matMatPanelQ6_4VNNI for 1 vector.
//
//go:noescape
func matMatPanelQ6_1VNNI(out []float32, m int, p []byte, x []int8, aux []uint32, n, pf int)

// sum16 returns the sum of x[:16], eight bytes at a time: each value plus
// 128 is a byte in 0..255, pairs of bytes add up in four 16-bit lanes,
// and a multiply gathers the lanes in the top 16 bits. The loop of 16
// additions it replaces was 2.8% of a TinyLlama-shaped Q4_K_M decode step
// of 8 sequences at 2 threads (Zen 4, family 25 model 17): q6Aux runs
// for every block of rows a step multiplies (model's decodeBlockBytes).
func sum16(x []int8) int32 {
	x = x[:16]
	p := unsafe.Pointer(unsafe.SliceData(x))
	a := *(*uint64)(p) ^ 0x8080808080808080
	b := *(*uint64)(unsafe.Add(p, 8)) ^ 0x8080808080808080
	const lanes = 0x00ff00ff00ff00ff
	s := a&lanes + a>>8&lanes + b&lanes + b>>8&lanes // each lane <= 4*255
	return int32(s*0x0001000100010001>>48) - 16*128
}
