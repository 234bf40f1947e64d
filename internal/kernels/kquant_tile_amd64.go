//go:build amd64 && !purego

package kernels

import "sync"

// Batched K-quant products with the VNNI tile kernels: one row by 4
// vectors at a time, each super-block unpacked once for the 4 (see
// ../asm/kquant/tile.go). The per-vector values that the matrix-vector
// kernels compute per super-block from the activation are prepared here,
// once per call, interleaved by super-block and vector.

// kqXSIndex45 and kqXSIndex6 give, for each dword lane of the kernels'
// packed sums, the 32-block (of the super-block's 8) whose scale it takes:
// XS0 lanes, then XS1 lanes (4 more).
var (
	kqXSIndex45 = [16]int{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3}
	kqXSIndex6  = [16]int{0, 0, 2, 2, 0, 0, 2, 2, 1, 1, 3, 3, 1, 1, 3, 3}
)

// kqTileKernel is the shape of the tile kernels: for r < rows and t < 4,
// out[t*m+r] = row r of w times vector t, as kqMatMatTiles prepares them.
type kqTileKernel func(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)

// kqMatMatTiles runs the tile kernel on each group of 4 vectors of a batch
// and vec on the last batch%4 vectors.
func kqMatMatTiles(tile kqTileKernel, vec kqKernel, name string, blockBytes int, out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := kBatch(name, out, rows, xq, xs, xsum, batch)
	rb := kRowBytes(name, blockBytes, rows, n, w, xs, xsum)
	nb, nsb := n/QBlock, n/qkK
	g4 := batch &^ 3
	if n > 0 && rows > 0 && g4 > 0 {
		q6 := blockBytes == q6KBytes
		auxFloats := 48
		if q6 {
			auxFloats = 32
		}
		sc := kqScratchPool.Get().(*kqScratch)
		defer kqScratchPool.Put(sc)
		xa := grow(&sc.xa, 4*n)
		aux := grow(&sc.aux, 4*nsb*auxFloats)
		var nc []int32
		if q6 {
			nc = grow(&sc.nc, 4*nsb*64)
		}
		for g := 0; g < g4; g += 4 {
			for t := range 4 {
				b := g + t
				x, s, sum := xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb]
				for sb := range nsb {
					i := sb*4 + t
					kqPrepTile(xa[i*qkK:(i+1)*qkK], aux[i*auxFloats:(i+1)*auxFloats], x[sb*qkK:(sb+1)*qkK], s[sb*8:sb*8+8], sum[sb*8:sb*8+8], q6)
					if q6 {
						kqPrepNC(nc[i*64:(i+1)*64], x[sb*qkK:(sb+1)*qkK])
					}
				}
			}
			tile(out[g*rows:(g+4)*rows], rows, w[:rows*rb], rows, nsb, xa, aux, nc)
		}
	}
	for b := g4; b < batch; b++ {
		vec(out[b*rows:(b+1)*rows], w, xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
	}
}

// kqScratch holds the prepared activations of a tile call; pooled, so that
// prompts allocate nothing per product once warm.
type kqScratch struct {
	xa  []int8
	aux []float32
	nc  []int32
}

var kqScratchPool = sync.Pool{New: func() any { return new(kqScratch) }}

// grow returns (*buf)[:n], reallocating *buf when it is too short.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}

// kqPrepTile writes one super-block of one vector for the tile kernels:
// its activation bytes in the order the quants are unpacked (Q4_K, Q5_K:
// [x0..31 x64..95], [x32..63 x96..127], then the same +128; Q6_K: as
// they are) and its scale vectors (XS0, XS1, and for Q4_K and Q5_K
// xs_j*xsum_j in lanes 0-7 with lanes 8-15 zero).
func kqPrepTile(xa []int8, aux []float32, x []int8, xs []float32, xsum []int32, q6 bool) {
	idx := &kqXSIndex45
	if q6 {
		idx = &kqXSIndex6
		copy(xa, x)
	} else {
		for i := range 4 {
			base := 128*(i/2) + 32*(i%2)
			copy(xa[64*i:64*i+32], x[base:base+32])
			copy(xa[64*i+32:64*i+64], x[base+64:base+96])
		}
	}
	for l, j := range idx {
		aux[l] = xs[j]
		aux[16+l] = xs[j+4]
	}
	if !q6 {
		for j := range 8 {
			aux[32+j] = float32(xsum[j]) * xs[j]
			aux[40+j] = 0
		}
	}
}

// kqPrepNC sets nc[l] = -32 times the sum of x[4l:4l+4], the start of Q6_K's
// accumulators (q-32 comes out through it).
func kqPrepNC(nc []int32, x []int8) {
	for l := range nc {
		nc[l] = -32 * (int32(x[4*l]) + int32(x[4*l+1]) + int32(x[4*l+2]) + int32(x[4*l+3]))
	}
}

// The tile kernels (kquant_amd64.s, ../asm/kquant/tile.go) compute,
// for a row length of n = nsb*256 values and 4 vectors,
//
//	for r := 0; r < rows; r++ {
//		for t := 0; t < 4; t++ {
//			out[t*m+r] = dotQ45K(w[r*nsb*B:], B, x_t, xs_t, xsum_t) // Q4_K, Q5_K
//			out[t*m+r] = dotQ6K(w[r*nsb*B:], x_t, xs_t)            // Q6_K
//		}
//	}
//
// up to the order of the float additions (as the matrix-vector kernels),
// with vector t given as kqMatMatTiles prepares it in xa, aux and nc.
// Preconditions, not checked: len(w) >= rows*nsb*B, len(out) >= 3*m+rows,
// len(xa) >= 1024*nsb, len(aux) >= 4*nsb*(48 or 32), len(nc) >= 256*nsb
// for Q6_K.

// matMatQ4_Kx4VNNI computes the loop above for Q4_K (AVX-512 VNNI).
//
//go:noescape
func matMatQ4_Kx4VNNI(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)

// matMatQ5_Kx4VNNI computes the loop above for Q5_K (AVX-512 VNNI).
//
//go:noescape
func matMatQ5_Kx4VNNI(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)

// matMatQ6_Kx4VNNI computes the loop above for Q6_K (AVX-512 VNNI).
//
//go:noescape
func matMatQ6_Kx4VNNI(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)
