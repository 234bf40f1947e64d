package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// kvImpls are the widening kernels this machine runs, with the Go twins
// (the reference) last.
func kvImpls() []kvImpl {
	impls := archKVImpls()
	return append(impls, kvImpl{"go", dequantRowsF16Go, dequantRowsQ8_0Go})
}

func TestDequantRowsF16(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, k := range kvImpls() {
		for _, cols := range []int{1, 7, 8, 15, 16, 17, 33, 64, 80, 128} {
			for _, rows := range []int{1, 2, 5} {
				stride := cols + r.IntN(40)
				src := make([]uint16, (rows-1)*stride+cols)
				for i := range src {
					src[i] = F32ToF16(float32(r.NormFloat64()))
				}
				const guard = 9
				dst := make([]float32, rows*cols+guard)
				for i := range dst {
					dst[i] = -7
				}
				k.f16(dst[:rows*cols], src, rows, cols, stride)
				msg := fmt.Sprintf("%s rows=%d cols=%d stride=%d", k.name, rows, cols, stride)
				for i := range rows * cols {
					require.Equal(t, F16ToF32(src[i/cols*stride+i%cols]), dst[i], msg)
				}
				for _, v := range dst[rows*cols:] {
					require.Equal(t, float32(-7), v, msg+": wrote past dst")
				}
			}
		}
	}
}

func TestDequantRowsQ8_0(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, k := range kvImpls() {
		for _, nb := range []int{1, 2, 3, 4} {
			for _, rows := range []int{1, 3, 6} {
				cols := nb * QBlock
				stride := nb*Q8_0Bytes + r.IntN(50)
				x := make([]float32, cols)
				src := make([]byte, (rows-1)*stride+nb*Q8_0Bytes)
				for row := range rows {
					for i := range x {
						x[i] = float32(r.NormFloat64())
					}
					QuantizeRowQ8_0(src[row*stride:], x)
				}
				dst := make([]float32, rows*cols+5)
				k.q8(dst[:rows*cols], src, rows, nb, stride)
				want := make([]float32, cols)
				for row := range rows {
					dequantRowQ8_0(want, src[row*stride:])
					require.Equal(t, want, dst[row*cols:(row+1)*cols], "%s rows=%d nb=%d row %d", k.name, rows, nb, row)
				}
				require.Equal(t, make([]float32, 5), dst[rows*cols:], "%s: wrote past dst", k.name)
			}
		}
	}
}

// TestQuantizeRowQ8_0: each value comes back within half a step of d (the
// float16 d's rounding adds at most 2^-11 of the value), the largest at
// ±127 steps, and a block of zeros is d = 0.
func TestQuantizeRowQ8_0(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	x := make([]float32, 4*QBlock)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * float32(i%7)
	}
	for i := 96; i < 128; i++ {
		x[i] = 0
	}
	dst := make([]byte, 4*Q8_0Bytes)
	QuantizeRowQ8_0(dst, x)
	y := make([]float32, len(x))
	dequantRowQ8_0(y, dst)
	for b := range 4 {
		blk := dst[b*Q8_0Bytes:]
		d := F16ToF32(le16(blk))
		var amax float64
		for _, v := range x[b*QBlock : (b+1)*QBlock] {
			amax = max(amax, math.Abs(float64(v)))
		}
		require.InDelta(t, amax/127, float64(d), amax/127*0x1p-11+1e-30, "block %d's d", b)
		seen127 := amax == 0
		for i := b * QBlock; i < (b+1)*QBlock; i++ {
			q := int8(blk[2+i-b*QBlock])
			require.NotEqual(t, int8(-128), q)
			seen127 = seen127 || q == 127 || q == -127
			require.InDelta(t, float64(x[i]), float64(y[i]), float64(d)*0.5+math.Abs(float64(x[i]))*0x1p-10, "value %d", i)
		}
		require.True(t, seen127, "block %d: the largest value at ±127", b)
	}
	require.Equal(t, make([]float32, QBlock), y[96:], "zeros")
}
