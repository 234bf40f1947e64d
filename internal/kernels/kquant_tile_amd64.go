//go:build amd64 && !purego

package kernels

import (
	"math"
	"sync"
)

// Batched K-quant products with the VNNI tile kernels: one row by 4
// vectors at a time, each super-block unpacked once for the 4 (see
// ../asm/kquant/tile.go). A vector gets exactly the value the
// matrix-vector kernels give it, so the batched products are batch
// invariant: a vector's values do not depend on the vectors it comes
// with, nor on how many (the last batch%4 vectors take the matrix-vector
// kernel). Like those kernels, the tiles want one activation scale per
// super-block (QuantizeSuperBlocks). The per-vector values that the
// matrix-vector kernels compute per super-block from the activation are
// prepared here, once per call, interleaved by super-block and vector.

// kqTileKernel is the shape of the tile kernels: for r < rows and t < 4,
// out[t*m+r] = row r of w times vector t, as kqMatMatTiles prepares them.
type kqTileKernel func(out []float32, m int, w []byte, rows, nsb int, xa []int8, aux []float32, nc []int32)

// The floats of aux a super-block (../asm/kquant/tile.go's tileAux45 and
// tileAux6 bytes).
const (
	kqAux45 = 48
	kqAux6  = 16
)

// kqMatMatTiles runs the tile kernel on each group of 4 vectors of a batch
// and vec on the last batch%4 vectors.
func kqMatMatTiles(tile kqTileKernel, vec kqKernel, name string, blockBytes int, out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
	n := kBatch(name, out, rows, xq, xs, xsum, batch)
	rb := kRowBytes(name, blockBytes, rows, n, w, xs, xsum)
	nb, nsb := n/QBlock, n/qkK
	g4 := batch &^ 3
	if n > 0 && rows > 0 && g4 > 0 {
		q6 := blockBytes == q6KBytes
		auxFloats := kqAux45
		if q6 {
			auxFloats = kqAux6
		}
		sc := kqScratchPool.Get().(*kqScratch)
		defer kqScratchPool.Put(sc)
		xa := grow(&sc.xa, 4*n)
		aux := grow(&sc.aux, nsb*auxFloats)
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
					kqPrepTile(xa[i*qkK:(i+1)*qkK], aux[sb*auxFloats:(sb+1)*auxFloats], t, x[sb*qkK:(sb+1)*qkK], s[sb*8], sum[sb*8:sb*8+8], q6)
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

// kqPrepTile writes vector t's part of one super-block for the tile
// kernels: its activation bytes in the order the quants are unpacked
// (Q4_K, Q5_K: [x0..31 x64..95], [x32..63 x96..127], then the same +128;
// Q6_K: as they are) and, in the super-block's aux, its scale xs (the
// super-block's one scale) and for Q4_K and Q5_K its 8 block sums as
// int16 words and [xs x4] (tile.go's layout).
func kqPrepTile(xa []int8, aux []float32, t int, x []int8, xs float32, xsum []int32, q6 bool) {
	if q6 {
		copy(xa, x)
		aux[t] = xs
		return
	}
	for i := range 4 {
		base := 128*(i/2) + 32*(i%2)
		copy(xa[64*i:64*i+32], x[base:base+32])
		copy(xa[64*i+32:64*i+64], x[base+64:base+96])
	}
	// |xsum_j| <= 32*127: the kernels' words (VPMOVDW in the
	// matrix-vector kernels) hold it exactly.
	for j := range 4 {
		lo, hi := uint32(uint16(int16(xsum[2*j]))), uint32(uint16(int16(xsum[2*j+1])))
		aux[4*t+j] = math.Float32frombits(lo | hi<<16)
	}
	for j := range 4 {
		aux[16+4*t+j] = xs
	}
	aux[kqAux45-16+t] = xs
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
// with the float operations of the matrix-vector kernels (kquant_amd64.go),
// vector t given as kqMatMatTiles prepares it in xa, aux and nc.
// Preconditions, not checked: len(w) >= rows*nsb*B, len(out) >= 3*m+rows,
// len(xa) >= 1024*nsb, len(aux) >= nsb*(kqAux45 or kqAux6), len(nc) >=
// 256*nsb for Q6_K.

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
