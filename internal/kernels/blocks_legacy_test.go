package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// legacyImplsAll is every implementation plus the dispatching functions.
func legacyImplsAll() []legacyImpl {
	return append(legacyImpls(), legacyImpl{
		name:   "dispatch",
		matVec: [4]func([]float32, []byte, []int8, []float32, []int32){matVecQ4_1, matVecQ5_0, matVecQ5_1, matVecIQ4NL},
		matMat: [4]func([]float32, []byte, int, []int8, []float32, []int32, int){matMatQ4_1, matMatQ5_0, matMatQ5_1, matMatIQ4NL},
	})
}

func TestLegacyImpls(t *testing.T) {
	var names []string
	for _, k := range legacyImpls() {
		names = append(names, k.name)
	}
	require.Equal(t, "go", names[len(names)-1])
	t.Logf("legacy block implementations: %v (avx2+fma %v, vnni %v, vbmi %v)", names, hasAVX2FMA, hasVNNI, hasVBMI)
}

// TestDequantLegacyBlocks decodes one block of each type written by hand
// from ggml-common.h's definitions, independently of legacyLayout.
func TestDequantLegacyBlocks(t *testing.T) {
	f16 := func(v float32) []byte { return binary.LittleEndian.AppendUint16(nil, F32ToF16(v)) }
	var qs [16]byte
	for j := range qs {
		qs[j] = byte(j) | byte(15-j)<<4 // value j: j, value j+16: 15-j
	}
	nib := func(i int) int {
		if i < 16 {
			return i
		}
		return 15 - (i - 16)
	}
	const qh = 0x80000005 // fifth bits of values 0, 2 and 31
	bit := func(i int) int { return int(uint32(qh) >> i & 1) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	qhBytes := binary.LittleEndian.AppendUint32(nil, qh)
	cases := []struct {
		name  string
		block []byte
		want  func(i int) float32
		deq   func([]float32, []byte)
	}{
		{"Q4_1", cat(f16(0.5), f16(-3), qs[:]), func(i int) float32 { return 0.5*float32(nib(i)) - 3 }, dequantRowQ4_1},
		{"Q5_0", cat(f16(-2), qhBytes, qs[:]), func(i int) float32 { return -2 * float32(nib(i)+16*bit(i)-16) }, dequantRowQ5_0},
		{"Q5_1", cat(f16(0.25), f16(1), qhBytes, qs[:]), func(i int) float32 { return 0.25*float32(nib(i)+16*bit(i)) + 1 }, dequantRowQ5_1},
		{"IQ4_NL", cat(f16(2), qs[:]), func(i int) float32 {
			return 2 * float32([]int{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}[nib(i)])
		}, dequantRowIQ4NL},
	}
	for _, c := range cases {
		got := make([]float32, QBlock)
		c.deq(got, c.block)
		for i := range got {
			require.Equal(t, c.want(i), got[i], "%s value %d", c.name, i)
		}
	}
}

// randLegacyBlocks returns nb random blocks of type l at offset off of a
// larger buffer: d and m of both signs around 0.01, any other bytes.
func randLegacyBlocks(r *rand.Rand, l *legacyLayout, nb, off int) []byte {
	buf := make([]byte, off+nb*l.bytes+7)
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	w := buf[off : off+nb*l.bytes]
	for b := range nb {
		binary.LittleEndian.PutUint16(w[b*l.bytes:], F32ToF16((r.Float32()*2-1)*0.02))
		if l.min {
			binary.LittleEndian.PutUint16(w[b*l.bytes+2:], F32ToF16((r.Float32()*2-1)*0.05))
		}
	}
	return w
}

// legacyWant computes the reference result of rows of w times one
// activation, and each row's tolerance (ggufTol over the terms' sizes).
func legacyWant(typ int, rows int, w []byte, xq []int8, xs []float32) ([]float32, []float64) {
	l := legacyTypes[typ].layout
	nb := len(xq) / QBlock
	want := make([]float32, rows)
	legacyTypes[typ].generic(want, w, xq, xs, nil)
	tol := make([]float64, rows)
	for r := range rows {
		var abs float64
		for b := range nb {
			blk := w[(r*nb+b)*l.bytes:]
			var a, ax int64
			for i := range QBlock {
				x := int64(xq[b*QBlock+i])
				a += int64(math.Abs(float64(int64(l.quant(blk, i)) * x)))
				ax += int64(math.Abs(float64(x)))
			}
			abs += math.Abs(float64(F16ToF32(le16(blk)))*float64(xs[b])) * float64(a)
			if l.min {
				abs += math.Abs(float64(F16ToF32(le16(blk[2:])))*float64(xs[b])) * float64(ax)
			}
		}
		tol[r] = ggufTol(2*nb, abs)
	}
	return want, tol
}

func TestMatVecLegacy(t *testing.T) {
	for typ, lt := range legacyTypes {
		for _, k := range legacyImplsAll() {
			t.Run(lt.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(41, uint64(typ)))
				for _, nb := range blockCounts {
					for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 13} {
						for _, off := range []int{0, 1, 3} {
							w := randLegacyBlocks(r, lt.layout, rows*nb, off)
							xq, xs, xsum := randActivation(r, nb*QBlock, 1)
							want, tol := legacyWant(typ, rows, w, xq, xs)
							out, check := guarded(t, rows, off)
							k.matVec[typ](out, w, xq, xs, xsum)
							checkOut(t, out, want, tol, check, fmt.Sprintf("blocks=%d rows=%d off=%d", nb, rows, off))
						}
					}
				}
			})
		}
	}
}

func TestMatMatLegacy(t *testing.T) {
	for typ, lt := range legacyTypes {
		for _, k := range legacyImplsAll() {
			t.Run(lt.name+"/"+k.name, func(t *testing.T) {
				r := rand.New(rand.NewPCG(43, uint64(typ)))
				for _, nb := range []int{1, 2, 3, 7, 28} {
					n := nb * QBlock
					for _, rows := range []int{1, 3, 5, 16, 17, 35} {
						for _, batch := range []int{1, 2, 3, 4, 5, 7, 8, 9, 17} {
							off := batch % 4
							w := randLegacyBlocks(r, lt.layout, rows*nb, off)
							xq, xs, xsum := randActivation(r, n, batch)
							out, check := guarded(t, batch*rows, off)
							k.matMat[typ](out, w, rows, xq, xs, xsum, batch)
							for b := range batch {
								want, tol := legacyWant(typ, rows, w, xq[b*n:(b+1)*n], xs[b*nb:(b+1)*nb])
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

// TestLegacyReferenceIsDequantDot: the reference loops equal the plain
// dequantizing loop: each row dequantized to float32, times the
// activation's values xq*xs, summed in float64.
func TestLegacyReferenceIsDequantDot(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	const nb = 7
	for typ, lt := range legacyTypes {
		for range 20 {
			w := randLegacyBlocks(r, lt.layout, nb, 0)
			xq, xs, _ := randActivation(r, nb*QBlock, 1)
			dq := make([]float32, nb*QBlock)
			lt.dequant(dq, w)
			var sum float64
			for i, v := range dq {
				sum += float64(v) * float64(xq[i]) * float64(xs[i/QBlock])
			}
			want, tol := legacyWant(typ, 1, w, xq, xs)
			// dq's values are rounded to float32 once more than the
			// reference's terms (d*q + m): add their rounding.
			var abs float64
			for i, v := range dq {
				abs += math.Abs(float64(v) * float64(xq[i]) * float64(xs[i/QBlock]))
			}
			requireClose(t, want[0], float32(sum), tol[0]+2*eps32*abs, lt.name)
		}
	}
}

// TestBlockTypesLegacy: the block-type table runs the legacy types with
// these kernels.
func TestBlockTypesLegacy(t *testing.T) {
	names := BlockTypeNames()
	for _, lt := range legacyTypes {
		require.Contains(t, names, lt.name)
	}
}
