package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// residentKTypes are the K-quants with resident panels: their K-quant
// test type (kquant_test.go) and Go kernels.
var residentKTypes = []struct {
	res    *BlockType
	typ    kqType
	MatVec func([]float32, []byte, []int8, []float32, []int32)
	MatMat func([]float32, []byte, int, []int8, []float32, []int32, int)
}{
	{Q4_KResident, kqTypes()[0], matVecResidentQ4_KGo, matMatResidentQ4_KGo},
	{Q5_KResident, kqTypes()[1], matVecResidentQ5_KGo, matMatResidentQ5_KGo},
	{Q6_KResident, kqTypes()[2], matVecResidentQ6_KGo, matMatResidentQ6_KGo},
}

// residentKCase returns rows of nsb random super-blocks of res's type and
// the same rows repacked into resident panels.
func residentKCase(r *rand.Rand, res *BlockType, rows, nsb int) (raw, packed []byte) {
	typ := kqTypes()[0]
	for _, rt := range residentKTypes {
		if rt.res == res {
			typ = rt.typ
		}
	}
	raw = randKBlocks(r, typ, rows*nsb)
	packed = make([]byte, len(raw))
	rb := nsb * res.BlockBytes
	for p := 0; p < rows; p += ResidentRows {
		PackResident(res, packed[p*rb:(p+ResidentRows)*rb], raw[p*rb:(p+ResidentRows)*rb], nsb)
	}
	return raw, packed
}

// TestResidentKQuants checks the resident K-quant kernels (the
// dispatching ones and Go's) against the reference loop over the file's
// super-blocks, for one vector and for batches, and that a vector gets the
// same values, bit for bit, in a batch as alone.
func TestResidentKQuants(t *testing.T) {
	for _, rt := range residentKTypes {
		impls := []struct {
			name   string
			MatVec func([]float32, []byte, []int8, []float32, []int32)
			MatMat func([]float32, []byte, int, []int8, []float32, []int32, int)
		}{
			{"dispatch", rt.res.MatVec, rt.res.MatMat},
			{"go", rt.MatVec, rt.MatMat},
		}
		if !ResidentKernels { // dispatch runs the Go kernels
			impls = impls[1:]
		}
		typ := rt.typ
		for _, k := range impls {
			t.Run(typ.name+"/"+k.name, func(t *testing.T) {
				testResidentK(t, rt.res, typ, k.MatVec, k.MatMat)
			})
		}
	}
}

func testResidentK(t *testing.T, bt *BlockType, typ kqType, matVec func([]float32, []byte, []int8, []float32, []int32), matMat func([]float32, []byte, int, []int8, []float32, []int32, int)) {
	r := rand.New(rand.NewPCG(51, 52))
	// (Sizes chosen for the race detector's time: 66 s with 35 shapes and
	// 6 batches, 14 now.)
	for _, nsb := range []int{1, 3, 8} {
		n := nsb * qkK
		// 1-3 panels one at a time; 4 and more 4 streams apart, then the rest.
		for _, rows := range []int{16, 48, 80, 176} {
			raw, res := residentKCase(r, bt, rows, nsb)
			xq, xs, xsum := kqRandActivation(r, n, 1)
			want, abs := refMatVecK(typ, raw, rows, xq, xs)
			out, check := kqGuarded(t, rows)
			matVec(out, res, xq, xs, xsum)
			msg := fmt.Sprintf("super-blocks=%d rows=%d", nsb, rows)
			check(msg)
			for i := range out {
				kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s row %d", msg, i))
			}
			// Groups of 8 (Q4_K), 4, 2 and 1.
			for _, batch := range []int{1, 3, 7, 13} {
				xq, xs, xsum := kqRandActivation(r, n, batch)
				out, check := kqGuarded(t, batch*rows)
				matMat(out, res, rows, xq, xs, xsum, batch)
				msg := fmt.Sprintf("super-blocks=%d rows=%d batch=%d", nsb, rows, batch)
				check(msg)
				nb := n / QBlock
				for v := range batch {
					q, s, sum := xq[v*n:(v+1)*n], xs[v*nb:(v+1)*nb], xsum[v*nb:(v+1)*nb]
					want, abs := refMatVecK(typ, raw, rows, q, s)
					for i := range rows {
						kqCheckClose(t, out[v*rows+i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s v=%d row %d", msg, v, i))
					}
					one := make([]float32, rows)
					matVec(one, res, q, s, sum)
					require.Equal(t, one, out[v*rows:(v+1)*rows], "%s v=%d: alone and in the batch", msg, v)
				}
			}
		}
	}
}

// TestResidentQ45KExtremes: the largest sums (every value 15, or 31 with
// Q5_K's fifth bit, every scale and min 63, activations ±127 or -128)
// stay exact in int32.
func TestResidentQ45KExtremes(t *testing.T) {
	const rows, nsb = 32, 8
	n := nsb * qkK
	for _, rt := range residentKTypes[:2] { // Q4_K, Q5_K
		bb := rt.res.BlockBytes
		raw := make([]byte, rows*nsb*bb)
		for i := range raw {
			raw[i] = 0xff
		}
		for b := 0; b < len(raw); b += bb {
			raw[b], raw[b+1] = 0x00, 0x1c   // d = 0.00390625
			raw[b+2], raw[b+3] = 0x00, 0x18 // dmin = 0.001953125
		}
		res := make([]byte, len(raw))
		rb := nsb * bb
		for p := 0; p < rows; p += ResidentRows {
			PackResident(rt.res, res[p*rb:(p+ResidentRows)*rb], raw[p*rb:(p+ResidentRows)*rb], nsb)
		}
		for _, xv := range []int8{127, -127, -128} {
			xq := make([]int8, n)
			for i := range xq {
				xq[i] = xv
			}
			xs := make([]float32, n/QBlock)
			for i := range xs {
				xs[i] = 0.01
			}
			xsum := make([]int32, len(xs))
			blockSums(xsum, xq)
			want, abs := refMatVecK(rt.typ, raw, rows, xq, xs)
			out := make([]float32, rows)
			rt.res.MatVec(out, res, xq, xs, xsum)
			for i := range out {
				kqCheckClose(t, out[i], want[i], abs[i], kqTolerance(n), fmt.Sprintf("%s x=%d row %d", rt.typ.name, xv, i))
			}
		}
	}
}

// TestDequantResidentK: a resident panel's rows dequantize to the file's,
// and unpacking gives back the file's bytes.
func TestDequantResidentK(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	const rows, nsb = 32, 3
	for _, rt := range residentKTypes {
		bb := rt.res.BlockBytes
		raw, res := residentKCase(r, rt.res, rows, nsb)
		rb := nsb * bb
		got, want := make([]float32, nsb*qkK), make([]float32, nsb*qkK)
		src := make([]byte, bb)
		for row := range rows {
			p := row &^ (ResidentRows - 1)
			panel := res[p*rb : (p+ResidentRows)*rb]
			DequantResidentRow(rt.res, got, panel, row-p)
			Block(rt.res.Type).Dequant(want, raw[row*rb:(row+1)*rb])
			require.Equal(t, want, got, "%s row %d", rt.typ.name, row)
			for sb := range nsb {
				rt.res.resident.unpack(panel[sb*ResidentRows*bb:(sb+1)*ResidentRows*bb], src, row-p)
				require.Equal(t, raw[row*rb+sb*bb:][:bb], src, "%s row %d super-block %d", rt.typ.name, row, sb)
			}
		}
	}
}

// TestBatchInvariantResidentK: resident K-quant panels, row ranges on
// whole panels as the runtime cuts them.
func TestBatchInvariantResidentK(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	vectors := invarianceBatches[len(invarianceBatches)-1]
	for _, rt := range residentKTypes {
		for _, s := range [][2]int{{16, 256}, {48, 2048}, {32, 5632}} {
			rows, n := s[0], s[1]
			nb := n / QBlock
			_, res := residentKCase(r, rt.res, rows, n/qkK)
			rb := n / qkK * rt.res.BlockBytes
			xq, xs, xsum := kqRandActivation(r, n, vectors)
			requireBatchInvariant(t, fmt.Sprintf("resident %s %dx%d", rt.typ.name, rows, n), rows, vectors,
				func(out []float32, batch int) {
					rt.res.MatMat(out, res, rows, xq[:batch*n], xs[:batch*nb], xsum[:batch*nb], batch)
				},
				func(out []float32, b, r0, r1 int) {
					p0, p1 := r0&^(ResidentRows-1), (r1+ResidentRows-1)&^(ResidentRows-1)
					tmp := make([]float32, p1-p0)
					rt.res.MatVec(tmp, res[p0*rb:p1*rb], xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb], xsum[b*nb:(b+1)*nb])
					copy(out, tmp[r0-p0:])
				})
		}
	}
}

// BenchmarkResidentK: Q4_K and Q6_K 512x2048 (from L2/L3) and 5632x2048,
// one vector and a batch of 8, in the file's layout and as resident
// panels.
func BenchmarkResidentK(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, rt := range residentKTypes {
		for _, s := range []struct{ rows, cols int }{{512, 2048}, {5632, 2048}, {2048, 5632}} {
			raw, res := residentKCase(r, rt.res, s.rows, s.cols/qkK)
			for _, batch := range []int{1, 8} {
				xq, xs, xsum := kqRandActivation(r, s.cols, batch)
				out := make([]float32, s.rows*batch)
				for _, c := range []struct {
					name string
					w    []byte
					bt   *BlockType
				}{{"file", raw, Block(rt.res.Type)}, {"resident", res, rt.res}} {
					b.Run(fmt.Sprintf("%s/%dx%d/batch%d/%s", rt.typ.name, s.rows, s.cols, batch, c.name), func(b *testing.B) {
						b.SetBytes(int64(len(raw)))
						for b.Loop() {
							if batch == 1 {
								c.bt.MatVec(out, c.w, xq, xs, xsum)
							} else {
								c.bt.MatMat(out, c.w, s.rows, xq, xs, xsum, batch)
							}
						}
					})
				}
			}
		}
	}
}
