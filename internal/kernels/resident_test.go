package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/llama2-go/llama2/gguf"
	"github.com/stretchr/testify/require"
)

// residentCase returns rows of nb random Q8_0 blocks, and the same rows
// repacked into resident panels.
func residentCase(r *rand.Rand, rows, nb int) (raw, res []byte) {
	raw = randBlocks(r, blockCases[0], rows*nb, 0)
	res = make([]byte, len(raw))
	rb := nb * q8_0Bytes
	for p := 0; p < rows; p += ResidentRows {
		PackResident(res[p*rb:(p+ResidentRows)*rb], raw[p*rb:(p+ResidentRows)*rb], nb)
	}
	return raw, res
}

// residentImpls are the kernels of resident panels: the dispatching ones
// (assembly where the CPU has it) and Go's.
var residentImpls = []struct {
	name   string
	MatVec func([]float32, []byte, []int8, []float32, []int32)
	MatMat func([]float32, []byte, int, []int8, []float32, []int32, int)
}{
	{"dispatch", matVecResidentQ8_0, matMatResidentQ8_0},
	{"go", matVecResidentGo, matMatResidentGo},
}

// TestResidentKernels checks the kernels of resident panels against the
// reference loop over the file's blocks, for one vector and for batches.
func TestResidentKernels(t *testing.T) {
	for _, k := range residentImpls {
		t.Run(k.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(41, 42))
			for _, nb := range blockCounts {
				n := nb * QBlock
				// 1-3 panels one at a time; 4 and more 4 streams apart, then the rest.
				for _, rows := range []int{16, 32, 48, 64, 80, 112, 176} {
					raw, res := residentCase(r, rows, nb)
					xq, xs, xsum := randActivation(r, n, 1)
					want, tol := blockWant(blockCases[0], rows, raw, xq, xs, xsum)
					out, check := guarded(t, rows, nb%3)
					k.MatVec(out, res, xq, xs, xsum)
					checkOut(t, out, want, tol, check, fmt.Sprintf("blocks=%d rows=%d", nb, rows))

					for _, batch := range []int{1, 2, 3, 7, 8, 13} {
						xq, xs, xsum := randActivation(r, n, batch)
						out, check := guarded(t, batch*rows, batch%4)
						k.MatMat(out, res, rows, xq, xs, xsum, batch)
						check()
						for v := range batch {
							q, s := xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb]
							sum := xsum[v*nb : (v+1)*nb]
							want, tol := blockWant(blockCases[0], rows, raw, q, s, sum)
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

// TestDequantResidentRow: a resident panel's rows dequantize to the file's.
func TestDequantResidentRow(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const rows, nb = 32, 5
	raw, res := residentCase(r, rows, nb)
	rb := nb * q8_0Bytes
	got, want := make([]float32, nb*QBlock), make([]float32, nb*QBlock)
	for row := range rows {
		p := row &^ (ResidentRows - 1)
		DequantResidentRow(got, res[p*rb:(p+ResidentRows)*rb], row-p)
		Block(gguf.TypeQ8_0).Dequant(want, raw[row*rb:(row+1)*rb])
		require.Equal(t, want, got, "row %d", row)
	}
}

// BenchmarkMatVecResidentL2: 256 rows of 2048 (140 KB), from L2, in the
// file's layout and as resident panels.
func BenchmarkMatVecResidentL2(b *testing.B) {
	const cols, rows = 2048, 256
	r := rand.New(rand.NewPCG(3, 4))
	xq, xs, xsum := randActivation(r, cols, 1)
	raw, res := residentCase(r, rows, cols/QBlock)
	out := make([]float32, rows)
	for _, c := range []struct {
		name   string
		w      []byte
		MatVec func([]float32, []byte, []int8, []float32, []int32)
	}{{"file", raw, Block(gguf.TypeQ8_0).MatVec}, {"resident", res, Q8_0Resident.MatVec}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				c.MatVec(out, c.w, xq, xs, xsum)
			}
		})
	}
}
