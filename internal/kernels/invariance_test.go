package kernels

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/llama2-go/llama2/gguf"
)

// Batch invariance: every batched product (MatMat, MatMatF16, a block
// type's MatMat) gives each vector exactly the float32 values the
// matrix-vector kernel gives that vector alone, whatever the batch size
// and the other vectors, and the matrix-vector kernels give a row the same
// value whatever rows it is computed with. The runtime relies on both:
// a position's logits must be the same alone, in a prompt's batch of any
// size, and in a decode step beside other sequences (model's
// TestBatchInvariance), or a seeded text would depend on what earlier
// requests left in a server's cache.

// invarianceShapes are (rows, n): odd row counts around the kernels'
// groups of 4, 8 and 16 rows, and rows long enough to be cut into blocks
// of their length (f32's tiles).
var invarianceShapes = [][2]int{{1, 256}, {5, 512}, {13, 256}, {17, 768}, {35, 256}, {16, 2048}, {9, 5632}}

// invarianceBatches are the batch sizes: every remainder of the tiles of
// 2, 3, 4 and 8 vectors.
var invarianceBatches = []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13}

// requireBatchInvariant runs mat (out, x, batch) on each batch size and vec
// (out, x of one vector, rows [r0, r1)) on each vector alone, whole and in
// two pieces of rows, and fails unless the values are equal.
func requireBatchInvariant(t *testing.T, name string, rows, vectors int,
	mat func(out []float32, batch int), vec func(out []float32, b, r0, r1 int)) {
	t.Helper()
	want := make([]float32, vectors*rows)
	for b := range vectors {
		vec(want[b*rows:(b+1)*rows], b, 0, rows)
	}
	// A row's value whatever rows come with it.
	cut := rows / 3
	for b := range vectors {
		got := make([]float32, rows)
		vec(got[:cut], b, 0, cut)
		vec(got[cut:], b, cut, rows)
		requireEqualFloats(t, want[b*rows:(b+1)*rows], got, fmt.Sprintf("%s: vector %d, rows cut at %d", name, b, cut))
	}
	for _, batch := range invarianceBatches {
		if batch > vectors || raceEnabled && batch%2 == 0 {
			continue
		}
		out := make([]float32, batch*rows)
		mat(out, batch)
		requireEqualFloats(t, want[:batch*rows], out, fmt.Sprintf("%s: batch of %d", name, batch))
	}
}

func requireEqualFloats(t *testing.T, want, got []float32, msg string) {
	t.Helper()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: value %d is %v, want %v", msg, i, got[i], want[i])
		}
	}
}

func TestBatchInvariantF32(t *testing.T) {
	if !MatMatBatchInvariant() {
		t.Skipf("MatMat on %s is not batch invariant (the NEON tiles)", runtime.GOARCH)
	}
	r := rand.New(rand.NewPCG(41, 42))
	vectors := invarianceBatches[len(invarianceBatches)-1]
	for _, k := range kernelImpls() {
		for _, s := range invarianceShapes {
			rows, n := s[0], s[1]
			w, x := randSlice(r, rows*n, 1), randSlice(r, vectors*n, 3)
			requireBatchInvariant(t, fmt.Sprintf("f32/%s %dx%d", k.name, rows, n), rows, vectors,
				func(out []float32, batch int) { k.MatMat(out, w, x[:batch*n], batch) },
				func(out []float32, b, r0, r1 int) { k.MatVec(out, w[r0*n:r1*n], x[b*n:(b+1)*n]) })
		}
	}
}

func TestBatchInvariantHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	vectors := invarianceBatches[len(invarianceBatches)-1]
	for _, h := range halfTypes {
		for _, k := range ggufImplsAll() {
			for _, s := range invarianceShapes {
				rows, n := s[0], s[1]
				w, x := randHalves(r, rows*n, 1, h.fromF), randSlice(r, vectors*n, 3)
				mv, mm := h.MatVec(k), h.MatMat(k)
				requireBatchInvariant(t, fmt.Sprintf("%s/%s %dx%d", h.name, k.name, rows, n), rows, vectors,
					func(out []float32, batch int) { mm(out, w, x[:batch*n], batch) },
					func(out []float32, b, r0, r1 int) { mv(out, w[r0*n:r1*n], x[b*n:(b+1)*n]) })
			}
		}
	}
}

// blockImpl is one implementation of a block type's two products.
type blockImpl struct {
	name   string
	MatVec func(out []float32, w []byte, xq []int8, xs []float32, xsum []int32)
	MatMat func(out []float32, w []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int)
}

// blockImplsOf lists every implementation of bt this machine runs: the
// dispatching functions and each family's implementations.
func blockImplsOf(bt *BlockType) []blockImpl {
	impls := []blockImpl{{"dispatch", bt.MatVec, bt.MatMat}}
	if dispatchOnly {
		return impls
	}
	switch bt.Type {
	case gguf.TypeQ8_0, gguf.TypeQ4_0:
		for _, k := range ggufImpls() {
			if bt.Type == gguf.TypeQ8_0 {
				impls = append(impls, blockImpl{k.name, k.matVecQ8_0, k.matMatQ8_0})
			} else {
				impls = append(impls, blockImpl{k.name, k.matVecQ4_0, k.matMatQ4_0})
			}
		}
	case gguf.TypeQ4_K, gguf.TypeQ5_K, gguf.TypeQ6_K:
		for _, typ := range kqTypes() {
			if typ.name == bt.Type.String() {
				for _, k := range typ.impls {
					impls = append(impls, blockImpl{k.name, k.MatVec, k.MatMat})
				}
			}
		}
	default:
		for i, lt := range legacyTypes {
			if lt.name == bt.Type.String() {
				for _, k := range legacyImpls() {
					impls = append(impls, blockImpl{k.name, k.matVec[i], k.matMat[i]})
				}
			}
		}
	}
	return impls
}

// randTypeBlocks returns nb random blocks of bt: random bytes with the
// float16 scales (and minima) set to small finite values.
func randTypeBlocks(r *rand.Rand, bt *BlockType, nb int) []byte {
	if bt.BlockSize == qkK {
		for _, typ := range kqTypes() {
			if typ.name == bt.Type.String() {
				return randKBlocks(r, typ, nb)
			}
		}
	}
	w := make([]byte, nb*bt.BlockBytes)
	for i := range w {
		w[i] = byte(r.Uint32())
	}
	for b := range nb {
		binary.LittleEndian.PutUint16(w[b*bt.BlockBytes:], F32ToF16((r.Float32()*2-1)*0.02))
		if bt.Type == gguf.TypeQ4_1 || bt.Type == gguf.TypeQ5_1 {
			binary.LittleEndian.PutUint16(w[b*bt.BlockBytes+2:], F32ToF16((r.Float32()*2-1)*0.05))
		}
	}
	return w
}

func TestBatchInvariantBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	vectors := invarianceBatches[len(invarianceBatches)-1]
	var types []*BlockType
	for _, name := range BlockTypeNames() {
		for _, bt := range blockTypes {
			if bt.Type.String() == name {
				types = append(types, bt)
			}
		}
	}
	for _, bt := range types {
		for _, k := range blockImplsOf(bt) {
			for _, s := range invarianceShapes {
				rows, n := s[0], s[1]
				if n%bt.BlockSize != 0 {
					continue
				}
				rb := n / bt.BlockSize * bt.BlockBytes
				w := randTypeBlocks(r, bt, rows*n/bt.BlockSize)
				x := randSlice(r, vectors*n, 0)
				xq, xs, xsum := make([]int8, len(x)), make([]float32, len(x)/QBlock), make([]int32, len(x)/QBlock)
				if bt.SuperScale {
					QuantizeSuperBlocks(xq, xs, xsum, x)
				} else {
					QuantizeBlocks(xq, xs, xsum, x)
				}
				nb := n / QBlock
				requireBatchInvariant(t, fmt.Sprintf("%s/%s %dx%d", bt.Type, k.name, rows, n), rows, vectors,
					func(out []float32, batch int) {
						k.MatMat(out, w, rows, xq[:batch*n], xs[:batch*nb], xsum[:batch*nb], batch)
					},
					func(out []float32, b, r0, r1 int) {
						k.MatVec(out, w[r0*rb:r1*rb], xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
					})
			}
		}
	}
}

// TestBatchInvariantResident: the resident Q8_0 and Q4_0 panels (row
// ranges on whole panels, as the runtime cuts them).
func TestBatchInvariantResident(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	vectors := invarianceBatches[len(invarianceBatches)-1]
	for _, rt := range residentTypes {
		for _, s := range [][2]int{{16, 256}, {48, 2048}, {32, 5632}} {
			rows, n := s[0], s[1]
			nb := n / QBlock
			_, res := residentCase(r, rt.res, rt.bc, rows, nb)
			rb := nb * rt.bc.bytes
			xq, xs, xsum := randActivation(r, n, vectors)
			requireBatchInvariant(t, fmt.Sprintf("resident %s %dx%d", rt.bc.name, rows, n), rows, vectors,
				func(out []float32, batch int) {
					rt.res.MatMat(out, res, rows, xq[:batch*n], xs[:batch*nb], xsum[:batch*nb], batch)
				},
				func(out []float32, b, r0, r1 int) {
					// Whole panels, as model/resident.go's mulResident.
					p0, p1 := r0&^(ResidentRows-1), (r1+ResidentRows-1)&^(ResidentRows-1)
					tmp := make([]float32, p1-p0)
					rt.res.MatVec(tmp, res[p0*rb:p1*rb], xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
					copy(out, tmp[r0-p0:])
				})
		}
	}
}
