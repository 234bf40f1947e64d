package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// eps32 is float32's unit roundoff: one rounding changes a value v by at
// most eps32*|v|.
const eps32 = 1.0 / (1 << 24)

// ggufTol bounds |got - want| for two float32 evaluations of a sum of terms
// whose absolute values add up to abs, one summing sequentially through
// seq additions (the reference), the other in lanes (fewer additions per
// lane, then a tree). A sequential sum of k terms, each the product of up
// to two roundings, errs by at most (k+2)*eps32*abs; the lanes' sums err by
// less. Both errors add: 2*(seq+8)*eps32*abs. For the block types abs is
// Σ_b |d_b*xs_b| * Σ_i |q_i*x_i|: the kernels' int32 partial sums are
// exact, but a lane may hold a partial sum of a block larger than the
// block's total.
func ggufTol(seq int, abs float64) float64 { return 2 * float64(seq+8) * eps32 * abs }

// ggufImplsAll is every implementation plus the dispatching functions
// (only those when dispatchOnly).
func ggufImplsAll() []ggufImpl {
	if dispatchOnly {
		return []ggufImpl{ggufDispatch}
	}
	return append(ggufImpls(), ggufDispatch)
}

// ggufDispatch is the dispatching functions as an implementation.
var ggufDispatch = ggufImpl{
	name:      "dispatch",
	MatVecF16: MatVecF16, MatVecBF16: MatVecBF16,
	MatMatF16: MatMatF16, MatMatBF16: MatMatBF16,
	matVecQ8_0: matVecQ8_0, matVecQ4_0: matVecQ4_0,
	matMatQ8_0: matMatQ8_0, matMatQ4_0: matMatQ4_0,
	dequantF16: DequantRowF16, dequantBF16: DequantRowBF16,
	dequantQ8_0: dequantRowQ8_0, dequantQ4_0: dequantRowQ4_0,
}

func TestGGUFImpls(t *testing.T) {
	var names []string
	for _, k := range ggufImpls() {
		names = append(names, k.name)
	}
	require.Equal(t, "go", names[len(names)-1])
	t.Logf("GGUF implementations: %v (avx2+fma %v, avx512 %v, vnni %v)", names, hasAVX2FMA, hasAVX512, hasVNNI)
}

// halfType is F16 or BF16: the conversions and the kernels of one impl.
type halfType struct {
	name   string
	toF32  func(uint16) float32
	fromF  func(float32) uint16
	MatVec func(k ggufImpl) func([]float32, []uint16, []float32)
	MatMat func(k ggufImpl) func([]float32, []uint16, []float32, int)
}

var halfTypes = []halfType{
	{"F16", F16ToF32, F32ToF16,
		func(k ggufImpl) func([]float32, []uint16, []float32) { return k.MatVecF16 },
		func(k ggufImpl) func([]float32, []uint16, []float32, int) { return k.MatMatF16 }},
	{"BF16", BF16ToF32, F32ToBF16,
		func(k ggufImpl) func([]float32, []uint16, []float32) { return k.MatVecBF16 },
		func(k ggufImpl) func([]float32, []uint16, []float32, int) { return k.MatMatBF16 }},
}

// randHalves returns n random half values in [-1, 1) starting at offset off
// of a larger buffer (so that w is unaligned).
func randHalves(r *rand.Rand, n, off int, from func(float32) uint16) []uint16 {
	buf := make([]uint16, off+n+5)
	for i := range buf {
		buf[i] = from(r.Float32()*2 - 1)
	}
	return buf[off : off+n]
}

// halfWant computes the reference result of rows of w times x, and each
// row's tolerance.
func halfWant(h halfType, rows int, w []uint16, x []float32) (want []float32, tol []float64) {
	n := len(x)
	want = make([]float32, rows)
	if h.name == "F16" {
		matVecF16Generic(want, w, x)
	} else {
		matVecBF16Generic(want, w, x)
	}
	tol = make([]float64, rows)
	for r := range rows {
		var abs float64
		for j := range n {
			abs += math.Abs(float64(h.toF32(w[r*n+j])) * float64(x[j]))
		}
		tol[r] = ggufTol(n, abs)
	}
	return want, tol
}

// checkOut compares out with want within tol and checks the guards.
func checkOut(t *testing.T, out, want []float32, tol []float64, check func(), msg string) {
	t.Helper()
	for i := range want {
		requireClose(t, want[i], out[i], tol[i], msg, " row ", i)
	}
	check()
}

var halfCols = []int{1, 2, 3, 5, 7, 15, 16, 17, 31, 32, 33, 47, 64, 100, 224, 1056}

func TestMatVecHalfGGUF(t *testing.T) {
	for _, h := range halfTypes {
		for _, k := range ggufImplsAll() {
			t.Run(h.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(11, 12))
				for _, n := range halfCols {
					for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13} {
						for _, off := range []int{0, 1, 3} {
							w := randHalves(r, rows*n, off, h.fromF)
							x := randSlice(r, n, off)
							want, tol := halfWant(h, rows, w, x)
							out, check := guarded(t, rows, off)
							h.MatVec(k)(out, w, x)
							checkOut(t, out, want, tol, check, fmt.Sprintf("n=%d rows=%d off=%d", n, rows, off))
						}
					}
				}
			})
		}
	}
}

func TestMatMatHalfGGUF(t *testing.T) {
	for _, h := range halfTypes {
		for _, k := range ggufImplsAll() {
			t.Run(h.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(13, 14))
				one := func(n, rows, batch int) {
					off := batch % 3
					w := randHalves(r, rows*n, off, h.fromF)
					x := randSlice(r, batch*n, off)
					out, check := guarded(t, batch*rows, off)
					h.MatMat(k)(out, w, x, batch)
					for b := range batch {
						want, tol := halfWant(h, rows, w, x[b*n:(b+1)*n])
						checkOut(t, out[b*rows:(b+1)*rows], want, tol, func() {}, fmt.Sprintf("n=%d rows=%d batch=%d b=%d", n, rows, batch, b))
					}
					check()
				}
				for _, n := range []int{1, 3, 16, 17, 33, 100, 1056} {
					for _, rows := range []int{1, 3, 4, 5, 8, 9, 13, 16, 35} {
						for _, batch := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 17} {
							one(n, rows, batch)
						}
					}
				}
				// Rows so long that a block of rows kept in L2 is 4 rows:
				// the vectors past the last tile go block by block.
				one(40000, 13, 7)
			})
		}
	}
}

// blockCase is Q8_0 or Q4_0.
type blockCase struct {
	name   string
	bytes  int
	qs     func(blk []byte) [QBlock]int32 // the block's values (q-8 for Q4_0)
	MatVec func(k ggufImpl) func([]float32, []byte, []int8, []float32, []int32)
	MatMat func(k ggufImpl) func([]float32, []byte, int, []int8, []float32, []int32, int)
}

var blockCases = []blockCase{
	{"Q8_0", q8_0Bytes,
		func(blk []byte) (v [QBlock]int32) {
			for i := range v {
				v[i] = int32(int8(blk[2+i]))
			}
			return v
		},
		func(k ggufImpl) func([]float32, []byte, []int8, []float32, []int32) { return k.matVecQ8_0 },
		func(k ggufImpl) func([]float32, []byte, int, []int8, []float32, []int32, int) { return k.matMatQ8_0 }},
	{"Q4_0", q4_0Bytes,
		func(blk []byte) (v [QBlock]int32) {
			for j := range QBlock / 2 {
				v[j], v[j+16] = int32(blk[2+j]&15)-8, int32(blk[2+j]>>4)-8
			}
			return v
		},
		func(k ggufImpl) func([]float32, []byte, []int8, []float32, []int32) { return k.matVecQ4_0 },
		func(k ggufImpl) func([]float32, []byte, int, []int8, []float32, []int32, int) { return k.matMatQ4_0 }},
}

// randBlocks returns nb random blocks of the type at offset off of a
// larger buffer: scales of both signs around 0.01, any quant bytes (Q8_0's
// -128 included).
func randBlocks(r *rand.Rand, bt blockCase, nb, off int) []byte {
	buf := make([]byte, off+nb*bt.bytes+7)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	w := buf[off : off+nb*bt.bytes]
	for b := range nb {
		d := F32ToF16((r.Float32()*2 - 1) * 0.02)
		w[b*bt.bytes], w[b*bt.bytes+1] = byte(d), byte(d>>8)
	}
	return w
}

// randActivation quantizes batch random vectors of n values.
func randActivation(r *rand.Rand, n, batch int) ([]int8, []float32, []int32) {
	x := randSlice(r, n*batch, 0)
	xq, xs, xsum := make([]int8, n*batch), make([]float32, n*batch/QBlock), make([]int32, n*batch/QBlock)
	QuantizeBlocks(xq, xs, xsum, x)
	return xq, xs, xsum
}

// blockWant computes the reference result and tolerances of rows of w
// times one activation.
func blockWant(bt blockCase, rows int, w []byte, xq []int8, xs []float32, xsum []int32) ([]float32, []float64) {
	nb := len(xq) / QBlock
	want := make([]float32, rows)
	if bt.name == "Q8_0" {
		matVecQ8_0Generic(want, w, xq, xs, xsum)
	} else {
		matVecQ4_0Generic(want, w, xq, xs, xsum)
	}
	tol := make([]float64, rows)
	for r := range rows {
		var abs float64
		for b := range nb {
			blk := w[(r*nb+b)*bt.bytes:]
			v := bt.qs(blk)
			var a int64
			for i, q := range v {
				a += int64(math.Abs(float64(q * int32(xq[b*QBlock+i]))))
			}
			abs += math.Abs(float64(F16ToF32(le16(blk)))*float64(xs[b])) * float64(a)
		}
		tol[r] = ggufTol(nb, abs)
	}
	return want, tol
}

var blockCounts = []int{1, 2, 3, 4, 5, 7, 33, 64}

func TestMatVecBlocksGGUF(t *testing.T) {
	for _, bt := range blockCases {
		for _, k := range ggufImplsAll() {
			t.Run(bt.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(21, 22))
				for _, nb := range blockCounts {
					n := nb * QBlock
					for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13} {
						for _, off := range []int{0, 1, 3} {
							w := randBlocks(r, bt, rows*nb, off)
							xq, xs, xsum := randActivation(r, n, 1)
							want, tol := blockWant(bt, rows, w, xq, xs, xsum)
							out, check := guarded(t, rows, off)
							bt.MatVec(k)(out, w, xq, xs, xsum)
							checkOut(t, out, want, tol, check, fmt.Sprintf("blocks=%d rows=%d off=%d", nb, rows, off))
						}
					}
				}
			})
		}
	}
}

func TestMatMatBlocksGGUF(t *testing.T) {
	for _, bt := range blockCases {
		for _, k := range ggufImplsAll() {
			t.Run(bt.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(23, 24))
				for _, nb := range []int{1, 2, 3, 5, 7, 33, 64} {
					n := nb * QBlock
					for _, rows := range []int{1, 3, 4, 5, 8, 9, 13, 16, 35} {
						for _, batch := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 17} {
							off := batch % 4
							w := randBlocks(r, bt, rows*nb, off)
							xq, xs, xsum := randActivation(r, n, batch)
							out, check := guarded(t, batch*rows, off)
							bt.MatMat(k)(out, w, rows, xq, xs, xsum, batch)
							for b := range batch {
								bx := func(i int) (int, int) { return b * i, (b + 1) * i }
								q0, q1 := bx(n)
								s0, s1 := bx(nb)
								want, tol := blockWant(bt, rows, w, xq[q0:q1], xs[s0:s1], xsum[s0:s1])
								checkOut(t, out[b*rows:(b+1)*rows], want, tol, func() {}, fmt.Sprintf("blocks=%d rows=%d batch=%d b=%d", nb, rows, batch, b))
							}
							check()
						}
					}
				}
			})
		}
	}
}

// TestMatMatLargeGGUF covers long rows and enough rows and vectors for
// several row blocks and vector tiles of the batched kernels.
func TestMatMatLargeGGUF(t *testing.T) {
	const n, rows, batch = 2048, 70, 13
	r := rand.New(rand.NewPCG(25, 26))
	xq, xs, xsum := randActivation(r, n, batch)
	x := randSlice(r, n*batch, 0)
	for _, k := range ggufImplsAll() {
		for _, bt := range blockCases {
			w := randBlocks(r, bt, rows*n/QBlock, 1)
			out := make([]float32, rows*batch)
			bt.MatMat(k)(out, w, rows, xq, xs, xsum, batch)
			for b := range batch {
				want, tol := blockWant(bt, rows, w, xq[b*n:(b+1)*n], xs[b*n/QBlock:(b+1)*n/QBlock], xsum[b*n/QBlock:(b+1)*n/QBlock])
				checkOut(t, out[b*rows:(b+1)*rows], want, tol, func() {}, k.name+" "+bt.name)
			}
		}
		for _, h := range halfTypes {
			w := randHalves(r, rows*n, 1, h.fromF)
			out := make([]float32, rows*batch)
			h.MatMat(k)(out, w, x, batch)
			for b := range batch {
				want, tol := halfWant(h, rows, w, x[b*n:(b+1)*n])
				checkOut(t, out[b*rows:(b+1)*rows], want, tol, func() {}, k.name+" "+h.name)
			}
		}
	}
}

func TestDequantRowGGUF(t *testing.T) {
	// Two blocks each, by hand: positive then negative d.
	q8 := []byte{0x00, 0x3c} // d = 1
	for i := range 32 {
		q8 = append(q8, byte(int8(i-16)))
	}
	q8 = append(q8, 0x00, 0xb8) // d = -0.5
	for i := range 32 {
		q8 = append(q8, byte(int8(127-8*i)))
	}
	q4 := []byte{0x00, 0x40} // d = 2
	for j := range 16 {
		q4 = append(q4, byte(j)|byte(15-j)<<4)
	}
	q4 = append(q4, 0x00, 0xbc) // d = -1
	for j := range 16 {
		q4 = append(q4, 0x80|byte(j))
	}
	var want8, want4 []float32
	for i := range 32 {
		want8 = append(want8, float32(i-16))
	}
	for i := range 32 {
		want8 = append(want8, -0.5*float32(127-8*i))
	}
	for j := range 16 {
		want4 = append(want4, 2*float32(j-8))
	}
	for j := range 16 {
		want4 = append(want4, 2*float32(15-j-8))
	}
	for j := range 16 {
		want4 = append(want4, -float32(j-8))
	}
	for range 16 {
		want4 = append(want4, 0) // (8-8) * -1 = -0
	}
	halves := []uint16{0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff}
	wantF16 := []float32{1, -2, 0.33325195, 5.9604645e-08, 65504}
	bf := []uint16{0x3f80, 0xc040, 0x3eaa}
	wantBF := []float32{1, -3, 0.33203125}
	for _, k := range ggufImplsAll() {
		got := make([]float32, 64)
		k.dequantQ8_0(got, q8)
		require.Equal(t, want8, got, k.name+" Q8_0")
		k.dequantQ4_0(got, q4)
		require.Equal(t, want4, got, k.name+" Q4_0")
		got = make([]float32, len(halves))
		k.dequantF16(got, halves)
		require.Equal(t, wantF16, got, k.name+" F16")
		got = make([]float32, len(bf))
		k.dequantBF16(got, bf)
		require.Equal(t, wantBF, got, k.name+" BF16")
	}
}

// TestDequantMatVecGGUF checks the dequantizers against the reference
// products: row · x of dequantized values, in float64.
func TestDequantMatVecGGUF(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	const nb = 5
	xq, xs, xsum := randActivation(r, nb*QBlock, 1)
	for _, bt := range blockCases {
		w := randBlocks(r, bt, nb, 0)
		dq := make([]float32, nb*QBlock)
		if bt.name == "Q8_0" {
			dequantRowQ8_0(dq, w)
		} else {
			dequantRowQ4_0(dq, w)
		}
		var sum float64
		for i, v := range dq {
			sum += float64(v) * float64(xq[i]) * float64(xs[i/QBlock])
		}
		want, tol := blockWant(bt, 1, w, xq, xs, xsum)
		requireClose(t, want[0], float32(sum), tol[0], bt.name)
	}
}

func TestQuantizeBlocksGGUF(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, nb := range []int{1, 2, 3, 7, 64} {
		x := randSlice(r, nb*QBlock, 1)
		for i := range x {
			x[i] *= float32(1 + i%5*100)
		}
		copy(x[:QBlock], make([]float32, QBlock)) // a zero block
		if nb > 2 {
			x[2*QBlock+3] = float32(math.Inf(1)) // a non-finite block
		}
		wq, ws, wsum := make([]int8, len(x)), make([]float32, nb), make([]int32, nb)
		QuantizeActivation(wq, ws, x, QBlock)
		blockSums(wsum, wq)
		gq, gs, gsum := make([]int8, len(x)), make([]float32, nb), make([]int32, nb)
		QuantizeBlocks(gq, gs, gsum, x)
		require.Equal(t, wq, gq)
		require.Equal(t, wsum, gsum)
		for i := range ws {
			require.Equal(t, math.Float32bits(ws[i]), math.Float32bits(gs[i]))
		}
	}
}

// TestQuantizeSuperBlocks compares QuantizeSuperBlocks with
// QuantizeActivation in groups of qkK values, the scale repeated per block:
// whole and partial super-blocks, a zero one and a non-finite one.
func TestQuantizeSuperBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, nb := range []int{1, 7, 8, 9, 17, 64} {
		x := randSlice(r, nb*QBlock, 1)
		for i := range x {
			x[i] *= float32(1 + i%5*100)
		}
		if nb > 8 {
			copy(x[qkK:], make([]float32, qkK)[:min(qkK, len(x)-qkK)]) // a zero super-block
		}
		if nb > 16 {
			x[2*qkK+3] = float32(math.Inf(-1)) // a non-finite one
		}
		wq, ws, wsum := make([]int8, len(x)), make([]float32, nb), make([]int32, nb)
		nsb := (len(x) + qkK - 1) / qkK
		sbScale := make([]float32, nsb)
		QuantizeActivation(wq, sbScale, x, qkK)
		for b := range ws {
			ws[b] = sbScale[b*QBlock/qkK]
		}
		blockSums(wsum, wq)
		gq, gs, gsum := make([]int8, len(x)), make([]float32, nb), make([]int32, nb)
		QuantizeSuperBlocks(gq, gs, gsum, x)
		require.Equal(t, wq, gq, "nb %d", nb)
		require.Equal(t, wsum, gsum, "nb %d", nb)
		for i := range ws {
			require.Equal(t, math.Float32bits(ws[i]), math.Float32bits(gs[i]), "nb %d scale %d", nb, i)
		}
	}
}
