package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/llama2-go/llama2/gguf"
	"github.com/stretchr/testify/require"
)

// residentTypes are the block types with resident panels, with their test
// case (blocks_test.go) and Go kernels.
var residentTypes = []struct {
	res  *BlockType
	bc   blockCase
	file *BlockType
}{
	{Q8_0Resident, blockCases[0], Block(gguf.TypeQ8_0)},
	{Q4_0Resident, blockCases[1], Block(gguf.TypeQ4_0)},
}

// residentCase returns rows of nb random blocks of bc's type, and the same
// rows repacked into resident panels of type res.
func residentCase(r *rand.Rand, res *BlockType, bc blockCase, rows, nb int) (raw, res_ []byte) {
	raw = randBlocks(r, bc, rows*nb, 0)
	res_ = make([]byte, len(raw))
	rb := nb * bc.bytes
	for p := 0; p < rows; p += ResidentRows {
		PackResident(res, res_[p*rb:(p+ResidentRows)*rb], raw[p*rb:(p+ResidentRows)*rb], nb)
	}
	return raw, res_
}

// residentImpls are the kernels of resident panels of type res: the
// dispatching ones (assembly where the CPU has it) and Go's.
func residentImpls(res *BlockType) []struct {
	name   string
	MatVec func([]float32, []byte, []int8, []float32, []int32)
	MatMat func([]float32, []byte, int, []int8, []float32, []int32, int)
} {
	l := res.resident
	return []struct {
		name   string
		MatVec func([]float32, []byte, []int8, []float32, []int32)
		MatMat func([]float32, []byte, int, []int8, []float32, []int32, int)
	}{
		{"dispatch", res.MatVec, res.MatMat},
		{"go", func(out []float32, p []byte, xq []int8, xs []float32, xsum []int32) {
			matVecResidentGo(l, out, p, xq, xs, xsum)
		}, func(out []float32, p []byte, rows int, xq []int8, xs []float32, xsum []int32, batch int) {
			matMatResidentGo(l, out, p, rows, xq, xs, xsum, batch)
		}},
	}
}

// TestResidentKernels checks the kernels of resident panels against the
// reference loop over the file's blocks, for one vector and for batches;
// where the assembly runs, a row's value is also the file's kernel's, bit
// for bit (the model's logits do not depend on the layout).
func TestResidentKernels(t *testing.T) {
	for _, rt := range residentTypes {
		for _, k := range residentImpls(rt.res) {
			t.Run(rt.bc.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(41, 42))
				for _, nb := range blockCounts {
					n := nb * QBlock
					// 1-3 panels one at a time; 4 and more 4 streams apart, then the rest.
					// (Fewer shapes for the race detector's and qemu's time:
					// 30 s and 39 s with 7 row counts and 6 batches, 12 s
					// under the race detector now.)
					for _, rows := range []int{16, 48, 80, 176} {
						raw, res := residentCase(r, rt.res, rt.bc, rows, nb)
						xq, xs, xsum := randActivation(r, n, 1)
						want, tol := blockWant(rt.bc, rows, raw, xq, xs, xsum)
						out, check := guarded(t, rows, nb%3)
						k.MatVec(out, res, xq, xs, xsum)
						msg := fmt.Sprintf("blocks=%d rows=%d", nb, rows)
						checkOut(t, out, want, tol, check, msg)
						if ResidentKernels && k.name == "dispatch" {
							file := make([]float32, rows)
							rt.file.MatVec(file, raw, xq, xs, xsum)
							require.Equal(t, file, out, "%s: resident and file layouts", msg)
						}

						for _, batch := range []int{1, 3, 7, 13} { // groups of 8, 4, 2, 1
							xq, xs, xsum := randActivation(r, n, batch)
							out, check := guarded(t, batch*rows, batch%4)
							k.MatMat(out, res, rows, xq, xs, xsum, batch)
							check()
							for v := range batch {
								q, s := xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb]
								sum := xsum[v*nb : (v+1)*nb]
								want, tol := blockWant(rt.bc, rows, raw, q, s, sum)
								msg := fmt.Sprintf("blocks=%d rows=%d batch=%d v=%d", nb, rows, batch, v)
								checkOut(t, out[v*rows:(v+1)*rows], want, tol, func() {}, msg)
								// A vector gets the same values in a batch as alone.
								one := make([]float32, rows)
								k.MatVec(one, res, q, s, sum)
								require.Equal(t, one, out[v*rows:(v+1)*rows], msg)
							}
						}
					}
				}
			})
		}
	}
}

// TestDequantResidentRow: a resident panel's rows dequantize to the file's.
func TestDequantResidentRow(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const rows, nb = 32, 5
	for _, rt := range residentTypes {
		raw, res := residentCase(r, rt.res, rt.bc, rows, nb)
		rb := nb * rt.bc.bytes
		got, want := make([]float32, nb*QBlock), make([]float32, nb*QBlock)
		for row := range rows {
			p := row &^ (ResidentRows - 1)
			DequantResidentRow(rt.res, got, res[p*rb:(p+ResidentRows)*rb], row-p)
			rt.file.Dequant(want, raw[row*rb:(row+1)*rb])
			require.Equal(t, want, got, "%s row %d", rt.bc.name, row)
		}
	}
}

// TestResidentOf: the block types with resident panels, and the others.
func TestResidentOf(t *testing.T) {
	require.Same(t, Q8_0Resident, ResidentOf(Block(gguf.TypeQ8_0)))
	require.Same(t, Q4_0Resident, ResidentOf(Block(gguf.TypeQ4_0)))
	require.Same(t, Q4_KResident, ResidentOf(Block(gguf.TypeQ4_K)))
	require.Same(t, Q6_KResident, ResidentOf(Block(gguf.TypeQ6_K)))
	require.Same(t, Q5_KResident, ResidentOf(Block(gguf.TypeQ5_K)))
	require.Nil(t, ResidentOf(Block(gguf.TypeQ5_0)))
	require.Nil(t, ResidentOf(Q8_0Resident))
}

// BenchmarkMatVecResidentL2: 256 rows of 2048 (Q8_0 140 KB), from L2, in
// the file's layout and as resident panels.
func BenchmarkMatVecResidentL2(b *testing.B) {
	const cols, rows = 2048, 256
	r := rand.New(rand.NewPCG(3, 4))
	xq, xs, xsum := randActivation(r, cols, 1)
	out := make([]float32, rows)
	for _, rt := range residentTypes {
		raw, res := residentCase(r, rt.res, rt.bc, rows, cols/QBlock)
		for _, c := range []struct {
			name   string
			w      []byte
			MatVec func([]float32, []byte, []int8, []float32, []int32)
		}{{"file", raw, rt.file.MatVec}, {"resident", res, rt.res.MatVec}} {
			b.Run(rt.bc.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					c.MatVec(out, c.w, xq, xs, xsum)
				}
			})
		}
	}
}
